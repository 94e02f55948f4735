"""NViST: single-image radiance fields.

model = nvs.load_model()                 # or nvs.load_model("model.safetensors")
field = model.predict("photo.jpg")       # focal=..., distance=... optional
out = field.render(poses, fx=..., fy=..., cx=..., cy=..., width=..., height=...)
summary = nvs.render_to_folder("photo.jpg", "out/photo", views=8, video="mp4", mesh="glb")   # the CLI's files
"""

from __future__ import annotations

from .model.nvist import NViST, NViSTConfig, RadianceField
from .render import InputError, render_to_folder
from .weights import load_model, save_model

__all__ = ["InputError", "NViST", "NViSTConfig", "RadianceField", "load_model", "render_to_folder", "save_model"]
