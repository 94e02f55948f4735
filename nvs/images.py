"""Reading photos for the model: any path, PIL image or tensor -> an RGB float tensor at the model's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from common.images import open_image


def load_rgb(image, background: tuple[float, float, float] = (1.0, 1.0, 1.0), orient: bool = True) -> Tensor:
    """[3, H, W] float in 0..1 from a path, PIL image or tensor. EXIF orientation is applied (unless `orient` is
    False: data sets' camera calibrations refer to the pixel grid as stored); grayscale is repeated; transparency
    (an alpha channel, or a palette's transparent colour) is composited over `background`; 16-bit images keep their
    precision."""
    if isinstance(image, Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3, 4) or not image.is_floating_point():
            raise ValueError(
                f"image: expected a float [3, H, W] tensor in 0..1, got {image.dtype} {tuple(image.shape)}"
            )
        if image.shape[0] == 3:  # already RGB: no copy
            return image.detach().cpu().float().clamp(0, 1)
        pixels = image.detach().cpu().float().permute(1, 2, 0)
    elif isinstance(image, (str, Path)):
        pixels = _pil_to_float(open_image(image, orient))
    elif isinstance(image, Image.Image):
        pixels = _pil_to_float(ImageOps.exif_transpose(image) if orient else image)
    else:
        raise TypeError(f"image: expected a path, PIL image or tensor, got {type(image).__name__}")
    if pixels.shape[2] == 1:
        pixels = pixels.expand(-1, -1, 3)
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3:]
        pixels = pixels[..., :3] * alpha + torch.tensor(background, dtype=torch.float32) * (1 - alpha)
    return pixels[..., :3].permute(2, 0, 1).clamp(0, 1)


def _pil_to_float(image: Image.Image) -> Tensor:
    """[H, W, C] float32 in 0..1, C = 1 (grayscale), 3 (RGB) or 4 (RGBA)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.array(image, dtype=np.float32)  # a copy: torch wants a writable array
        if image.mode.startswith("I;16"):  # 16-bit by definition, however dark
            array = array / 65535.0
        elif image.mode == "I":  # 32-bit integers: Pillow's mode for some 8- and 16-bit files; judged by the peak
            array = array / (65535.0 if array.max() > 255 else 255.0)
        return torch.from_numpy(array)[..., None]
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    # 8-bit pixels to float in torch: numpy's asarray(image, dtype=float32) is ~10x slower on large photos
    pixels = torch.from_numpy(np.array(image)).float().div_(255.0)
    if image.mode == "LA":
        pixels = torch.cat([pixels[..., :1].expand(-1, -1, 3), pixels[..., 1:]], dim=2)
    return pixels if pixels.ndim == 3 else pixels[..., None]


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
