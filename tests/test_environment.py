"""The set-up that `make test` performs gives a working stack (open3d needs Debian's libusb-1.0-0)."""

import importlib

import pytest


@pytest.mark.parametrize("module", ["open3d", "timm", "lightning", "kornia", "torchmetrics", "safetensors", "triton"])
def test_dependency_imports(module):
    importlib.import_module(module)
