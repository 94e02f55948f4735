"""Reading photos for the model: any path, PIL image or tensor -> an RGB float tensor at the model's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from common.images import open_image


def load_rgb(image, background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Tensor:
    """[3, H, W] float in 0..1 from a path, PIL image or tensor. EXIF orientation is applied; grayscale is
    repeated; alpha is composited over `background`; 16-bit images keep their precision."""
    if isinstance(image, Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3, 4) or not image.is_floating_point():
            raise ValueError(
                f"image: expected a float [3, H, W] tensor in 0..1, got {image.dtype} {tuple(image.shape)}"
            )
        if image.shape[0] == 3:  # already RGB: no copy through numpy
            return image.detach().cpu().float().clamp(0, 1)
        array = image.detach().cpu().float().permute(1, 2, 0).numpy()
    else:
        if isinstance(image, (str, Path)):
            image = open_image(image)
        if not isinstance(image, Image.Image):
            raise TypeError(f"image: expected a path, PIL image or tensor, got {type(image).__name__}")
        image = ImageOps.exif_transpose(image)
        array = _pil_to_float(image)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        alpha = array[..., 3:]
        array = array[..., :3] * alpha + np.asarray(background, np.float32) * (1 - alpha)
    return torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1).float().clamp(0, 1)


def _pil_to_float(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float32)
        return (array / (65535.0 if array.max() > 255 else 255.0))[..., None]
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)[..., None]
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    array = np.asarray(image, dtype=np.float32) / 255.0
    if image.mode == "LA":
        array = np.concatenate([array[..., :1].repeat(3, axis=2), array[..., 1:]], axis=2)
    return array if array.ndim == 3 else array[..., None]


def prepare_image(image, height: int, width: int) -> tuple[Tensor, float]:
    """Resize (keeping the aspect ratio) and centre-crop to height×width. Returns the image and the scale
    applied to it, so a focal length in the input's pixels can follow. A decoded [3, H, W] tensor is used as it
    is (load_rgb decodes only paths and PIL images)."""
    rgb = load_rgb(image)
    _, h, w = rgb.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    resized = F.interpolate(rgb[None], size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)[0]
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return resized[:, top : top + height, left : left + width].clamp(0, 1), scale
