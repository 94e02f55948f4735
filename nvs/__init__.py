"""NViST: single-image radiance fields.

model = nvs.load_model()                 # or nvs.load_model("model.safetensors")
field = model.predict("photo.jpg")       # focal=..., distance=... optional
out = field.render(poses, fx=..., fy=..., cx=..., cy=..., width=..., height=...)
"""

from __future__ import annotations

from .model.nvist import NViST, NViSTConfig, RadianceField
from .weights import load_model, save_model

__all__ = ["NViST", "NViSTConfig", "RadianceField", "load_model", "save_model"]
