import os

import torch

# Two xdist workers on two cores: one intra-op thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# Without a GPU, Triton kernels run on the CPU through Triton's interpreter; this must be set
# before triton is first imported. Kernel outputs are NaN-filled so an unwritten element fails.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("KERNELS_NAN_FILL", "1")


def pytest_collection_modifyitems(config, items):
    """Slow tests train models in subprocesses that use both cores: keep them on one xdist worker, one at a
    time (with `--dist loadgroup`), so two trainings never fight over the CPU."""
    import pytest

    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("training"))
