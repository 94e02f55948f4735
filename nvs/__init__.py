"""NViST: single-image radiance fields.

model = nvs.load_model()                 # or nvs.load_model("model.safetensors")
field = model.predict("photo.jpg")       # focal=..., distance=... optional
out = field.render(poses, fx=..., fy=..., cx=..., cy=..., width=..., height=...)
summary = nvs.render_to_folder("photo.jpg", "out/photo", views=8, video="mp4", mesh="glb")   # the CLI's files

The names below load on first use, so that `python -m nvs.render --help` answers without importing torch and
running the command module never finds itself already imported by the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.lazy import lazy_names

# the submodule -> the public names it defines
_LAZY = {
    "errors": ("InputError",),
    "model.nvist": ("NViST", "NViSTConfig", "RadianceField"),
    "outputs": ("render_to_folder",),
    "weights": ("load_model", "save_model"),
}
__all__ = ["InputError", "NViST", "NViSTConfig", "RadianceField", "load_model", "render_to_folder", "save_model"]

if TYPE_CHECKING:
    from .errors import InputError
    from .model.nvist import NViST, NViSTConfig, RadianceField
    from .outputs import render_to_folder
    from .weights import load_model, save_model


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
