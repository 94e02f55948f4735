"""Opening image files: one place that turns a path into a decoded PIL image or a one-line error naming it, and
a reader that decodes each file once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from PIL import Image


def open_image(path: str | Path, orient: bool = True) -> Image.Image:
    """The image at `path`, decoded whole (the file is closed again), with its EXIF orientation applied when
    `orient` (False: the pixel grid as stored, which camera calibrations such as COLMAP's and nerfstudio's refer to).
    FileNotFoundError when there is no file; ValueError naming the file when it cannot be decoded."""
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image: no file at {path}")
    try:
        with Image.open(path) as opened:
            opened.load()
            return ImageOps.exif_transpose(opened) if orient else opened.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"image: cannot read {path}: {error}") from error


Decoded = TypeVar("Decoded")


class DecodedOnce(Generic[Decoded]):
    """`read(path)`, each path read once and its result kept in memory for every later call (the same object is
    returned, so callers must not change it in place). Training on a dataset that fits in memory reads the same
    small files every epoch, and decoding them was a tenth of the tiny NViST's CPU step. Each DataLoader worker
    process fills its own copy."""

    def __init__(self, read: Callable[[str | Path], Decoded]):
        self.read = read
        self._decoded: dict[str, Decoded] = {}

    def __call__(self, path: str | Path) -> Decoded:
        key = str(path)
        if key not in self._decoded:
            self._decoded[key] = self.read(path)
        return self._decoded[key]


__all__ = ["DecodedOnce", "open_image"]
