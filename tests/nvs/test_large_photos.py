"""Very large photos: a JPEG is decoded at a reduced DCT scale that keeps PHOTO_MIN_SIDE pixels a side, so a
phone's 200-megapixel photo renders instead of being refused by Pillow's decompression-bomb limit, and what the
model sees is the same image as from a full decode (to JPEG rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from common.images import open_image
from nvs.errors import InputError
from nvs.images import load_rgb, prepare_image
from nvs.outputs import PHOTO_MIN_SIDE, read_photo

WHITE = (1.0, 1.0, 1.0)


def smooth_photo(width: int, height: int) -> Image.Image:
    """Gradients and a disc: content with no detail finer than a few hundred pixels, like a downscaled object."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / width
    g = y / height
    b = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (height / 3) ** 2).astype(np.float32) * 0.8
    return Image.fromarray((np.stack([r, g, b], axis=2) * 255).round().astype(np.uint8))


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "photo.jpg"
    smooth_photo(4096, 3072).save(path, quality=95)
    return path


def test_a_large_jpeg_decodes_at_the_smallest_scale_keeping_the_minimum_side(big_jpeg):
    assert PHOTO_MIN_SIDE == 1024
    assert open_image(big_jpeg, at_least=1024).size == (2048, 1536)  # 1/4 would leave 768 < 1024
    assert open_image(big_jpeg, at_least=700).size == (1024, 768)
    assert open_image(big_jpeg).size == (4096, 3072)


def test_a_photo_over_pillows_limit_renders_and_the_model_sees_the_same_image(big_jpeg, monkeypatch):
    full = prepare_image(load_rgb(big_jpeg), 90, 160)[0]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000_000)  # the file's 12.6 MP is over twice this
    with pytest.raises(Image.DecompressionBombError):
        Image.open(big_jpeg)
    photo = read_photo(big_jpeg, WHITE)
    assert photo.shape == (3, 1536, 2048)
    reduced = prepare_image(photo, 90, 160)[0]
    assert (reduced - full).abs().max() < 0.02 and (reduced - full).abs().mean() < 0.003


def test_other_formats_keep_pillows_limit(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    smooth_photo(2048, 1536).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    with pytest.raises(InputError, match="decompression bomb|exceeds limit"):
        read_photo(path, WHITE)


def test_a_jpeg_too_large_even_when_reduced_is_refused_with_both_sizes(big_jpeg, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500_000)  # 2048x1536 is over twice this
    with pytest.raises(InputError, match="4096x3072.*2048x1536"):
        read_photo(big_jpeg, WHITE)


def test_exif_rotation_and_small_photos_are_unchanged(tmp_path):
    image = smooth_photo(4800, 2400)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image.save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    assert read_photo(tmp_path / "rotated.jpg", WHITE).shape == (3, 2400, 1200)  # decoded at 1/2, then rotated
    smooth_photo(1500, 1000).save(tmp_path / "small.jpg", quality=95)
    small = read_photo(tmp_path / "small.jpg", WHITE)
    assert torch.equal(small, load_rgb(tmp_path / "small.jpg"))  # under 2x the minimum side: a full decode
