"""Opening image files: one place that turns a path into a decoded PIL image or a one-line error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


def open_image(path: str | Path) -> Image.Image:
    """The image at `path`, decoded whole (the file is closed again) with its EXIF orientation applied.
    FileNotFoundError when there is no file; ValueError naming the file when it cannot be decoded."""
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image: no file at {path}")
    try:
        with Image.open(path) as opened:
            opened.load()
            return ImageOps.exif_transpose(opened)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"image: cannot read {path}: {error}") from error


__all__ = ["open_image"]
