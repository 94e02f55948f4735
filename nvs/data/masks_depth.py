"""Per-view object masks and depth maps as nerfstudio folders store them, read and written in one place.

- mask (frame key `mask_path`): a single-channel image (1-, 8- or 16-bit); a pixel shows the object where its value
  is not zero, as nerfstudio reads it (0/1 and 0/255 masks alike). The writer stores 0 or 255.
- depth (frame key `depth_file_path`): a 16-bit single-channel PNG or a 2-D .npy array of z-depth in the camera frame
  (along the optical axis, not along the ray); 0 means "no depth" (background). Stored values times
  `depth_unit_scale_factor` (top level of transforms.json; nerfstudio's name and its default, 1e-3) are world units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from common.files import write_atomic
from common.images import open_image

DEFAULT_DEPTH_SCALE = 1e-3  # nerfstudio's default: millimetres to metres


def _check_size(array: np.ndarray, path: Path, size: tuple[int, int] | None, what: str) -> None:
    if array.ndim != 2:
        raise ValueError(f"{what}: {path} must have one channel, got an array of shape {array.shape}")
    if size is not None and array.shape != tuple(size):
        raise ValueError(f"{what}: {path} is {array.shape[1]}x{array.shape[0]} but its image is {size[1]}x{size[0]}")


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """[H, W] float32 of 0 and 1 (1 = object: a non-zero value). size: the (height, width) its image has; another
    size is an error."""
    path = Path(path)
    image = open_image(path)
    if image.mode not in ("1", "L", "I;16", "I;16B", "I;16L", "I"):
        raise ValueError(f"mask: {path} must be a single-channel image, got mode {image.mode}")
    array = (np.asarray(image) != 0).astype(np.float32)
    _check_size(array, path, size, "mask")
    return array


def read_depth(path: str | Path, scale: float = DEFAULT_DEPTH_SCALE, size: tuple[int, int] | None = None) -> np.ndarray:
    """[H, W] float32 z-depth in world units (stored value × scale; 0 = none) from a 16-bit PNG or a .npy file."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise FileNotFoundError(f"depth: no file at {path}")
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"depth: cannot read {path}: {error}") from error
    else:
        image = open_image(path)
        if image.mode not in ("I;16", "I;16B", "I;16L", "I", "L", "F"):
            raise ValueError(f"depth: {path} must be a single-channel (16-bit) image, got mode {image.mode}")
        array = np.asarray(image)
    array = np.asarray(array, dtype=np.float32)
    _check_size(array, path, size, "depth")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"depth: {path} holds negative or non-finite values")
    return array * np.float32(scale)


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """A boolean [H, W] mask as an 8-bit PNG of 0 and 255, atomically."""
    image = Image.fromarray(np.where(np.asarray(mask, bool), 255, 0).astype(np.uint8), mode="L")
    return write_atomic(path, lambda tmp: image.save(tmp, format="PNG"))


def write_depth(path: str | Path, depth: np.ndarray, scale: float) -> Path:
    """z-depth [H, W] in world units (0 = none) as a 16-bit PNG of depth / scale, rounded, atomically; depths
    beyond 65535 × scale are an error, not silently clipped."""
    stored = np.round(np.asarray(depth, np.float64) / scale)
    if (stored < 0).any() or (stored > 65535).any() or not np.isfinite(stored).all():
        raise ValueError(f"depth: values must lie in [0, {65535 * scale}] for a 16-bit PNG at scale {scale}")
    image = Image.fromarray(stored.astype(np.uint16))
    return write_atomic(path, lambda tmp: image.save(tmp, format="PNG"))


__all__ = ["DEFAULT_DEPTH_SCALE", "read_depth", "read_mask", "write_depth", "write_mask"]
