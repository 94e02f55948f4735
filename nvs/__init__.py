"""NViST: single-image radiance fields.

model = nvs.load_model()                 # or nvs.load_model("model.safetensors")
field = model.predict("photo.jpg")       # focal=..., distance=... optional
out = field.render(poses, fx=..., fy=..., cx=..., cy=..., width=..., height=...)
summary = nvs.render_to_folder("photo.jpg", "out/photo", views=8, video="mp4", mesh="glb")   # the CLI's files

The names below load on first use, so that `python -m nvs.render --help` answers without importing torch and
running the command module never finds itself already imported by the package.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

# public name -> the submodule that defines it
_LAZY = {
    "InputError": "errors",
    "NViST": "model.nvist",
    "NViSTConfig": "model.nvist",
    "RadianceField": "model.nvist",
    "load_model": "weights",
    "render_to_folder": "outputs",
    "save_model": "weights",
}

__all__ = ["InputError", "NViST", "NViSTConfig", "RadianceField", "load_model", "render_to_folder", "save_model"]

if TYPE_CHECKING:
    from .errors import InputError
    from .model.nvist import NViST, NViSTConfig, RadianceField
    from .outputs import render_to_folder
    from .weights import load_model, save_model


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule: `nvs.<module>` works
            return importlib.import_module(f".{name}", __name__)  # as it did when this file imported everything
        raise AttributeError(f"module 'nvs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
