"""Opening image files: one place that turns a path into a decoded PIL image or a one-line error naming it, and
a reader that decodes each file once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from PIL import Image


def open_image(path: str | Path, orient: bool = True, at_least: int | None = None) -> Image.Image:
    """The image at `path`, decoded whole (the file is closed again), with its EXIF orientation applied when
    `orient` (False: the pixel grid as stored, which camera calibrations such as COLMAP's and nerfstudio's refer to).
    With `at_least`, a JPEG is decoded at the smallest of its DCT scales (1/2, 1/4, 1/8) that keeps both sides at
    least that long, and Pillow's decompression-bomb limit applies to the decoded size, not the file's: a
    200-megapixel phone photo opens in a fraction of the time and memory. FileNotFoundError when there is no file;
    ValueError naming the file when it cannot be decoded."""
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image: no file at {path}")
    try:
        with _open_reduced(path, at_least) if at_least else Image.open(path) as opened:
            opened.load()
            return ImageOps.exif_transpose(opened) if orient else opened.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"image: cannot read {path}: {error}") from error


def _open_reduced(path: Path, at_least: int) -> Image.Image:
    """A JPEG opened and set to decode at a reduced scale (Image.open would refuse a very large one before any
    reduction could be asked for); any other format through Image.open."""
    from PIL import Image, JpegImagePlugin

    try:
        opened = JpegImagePlugin.JpegImageFile(path)
    except SyntaxError:  # not a JPEG
        return Image.open(path)
    width, height = opened.size
    scale = min(width, height) / at_least
    if scale >= 2:
        opened.draft(opened.mode, (round(width / scale), round(height / scale)))
    if Image.MAX_IMAGE_PIXELS and opened.size[0] * opened.size[1] > 2 * Image.MAX_IMAGE_PIXELS:
        opened.close()
        raise Image.DecompressionBombError(
            f"{width}x{height} pixels, {opened.size[0]}x{opened.size[1]} at the smallest scale that keeps "
            f"{at_least} pixels a side: more than twice Pillow's limit of {Image.MAX_IMAGE_PIXELS}"
        )
    return opened


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
