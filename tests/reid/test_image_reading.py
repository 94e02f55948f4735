"""One image reader for training, evaluation, `model.embed`, `reid.rank` and `reid-search`: EXIF orientation applied
and 16-bit pixels scaled by their format's range, checked against pixels computed here by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reid import load_model, rank
from reid import search as reid_search
from reid.data import read_image

ROTATE_CW_TO_VIEW = 6  # EXIF Orientation: the stored pixels are shown turned 90 degrees clockwise


def upright_pixels(seed: int = 0) -> np.ndarray:
    """A 128 x 64 person-shaped RGB image whose embedding depends on its orientation (blocks plus noise)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (128, 64, 3)).astype(np.uint8)
    pixels[:40] += np.array([180, 20, 30], np.uint8)
    pixels[40:90, 10:54] += np.array([20, 150, 40], np.uint8)
    pixels[90:] += np.array([10, 30, 170], np.uint8)
    return pixels


def save_sideways(pixels: np.ndarray, path: Path) -> Path:
    """The pixels stored turned a quarter counter-clockwise, with the EXIF tag that turns them back (lossless PNG)."""
    exif = Image.Exif()
    exif[0x0112] = ROTATE_CW_TO_VIEW
    Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif.tobytes())
    return path


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """[3, H, W] in 0..1 from 8-bit [H, W, 3] or [H, W] (gray repeated): the reference, read without any file."""
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)


def sixteen_bit_reference(values: np.ndarray) -> np.ndarray:
    return np.round(values.astype(np.float64) / 65535 * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.mark.parametrize("brightest", [200, 300, 4000, 65535])
def test_16_bit_files_are_divided_by_65535_however_dark(tmp_path, brightest):
    """A 16-bit file whose brightest pixel is 200 / 65535 is nearly black, not 200 / 255 (the old max-based guess
    read it as nearly white, and the same picture at 300 / 65535 as black)."""
    rng = np.random.default_rng(brightest)
    values = rng.integers(0, brightest + 1, (12, 8)).astype(np.uint16)
    values[0, 0] = brightest
    little = tmp_path / "gray16.png"
    Image.fromarray(values).save(little)
    big = tmp_path / "gray16b.tif"
    Image.frombytes("I;16B", (8, 12), values.astype(">u2").tobytes()).save(big)
    expected = np.repeat(sixteen_bit_reference(values)[..., None], 3, axis=2)
    for path, mode in ((little, "I;16"), (big, "I;16B")):
        with Image.open(path) as opened:
            assert opened.mode == mode  # the file really is 16-bit as Pillow sees it
        np.testing.assert_array_equal(np.asarray(read_image(path)), expected)


@pytest.mark.parametrize("mode, dtype", [("I", np.int32), ("F", np.float32)])
def test_32_bit_files_keep_the_range_guess(tmp_path, mode, dtype):
    """Modes I and F do not say their range: up to 255 is taken as 8-bit, above it as 16-bit."""
    for brightest, peak in ((200, 255), (300, 65535)):
        values = np.linspace(0, brightest, 96).reshape(12, 8).astype(dtype)
        path = tmp_path / f"{mode}{brightest}.tif"
        Image.fromarray(values).save(path)
        with Image.open(path) as opened:
            assert opened.mode == mode
        expected = np.round(values.astype(np.float64) / peak * 255).astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(read_image(path))[..., 0], expected)


def test_exif_orientation_is_applied(tmp_path):
    pixels = upright_pixels()
    sideways = save_sideways(pixels, tmp_path / "sideways.png")
    with Image.open(sideways) as stored:
        assert stored.size == (128, 64)  # stored landscape; shown portrait
    np.testing.assert_array_equal(np.asarray(read_image(sideways)), pixels)


def test_embed_reads_files_as_training_does(tmp_path, model):
    """model.embed(path) of an EXIF-rotated photo equals the embedding of its upright pixels, and a 16-bit file's
    equals that of its pixels divided by 65535 (the bare Image.open embedded the first sideways, at distance ~1,
    and clipped the second to white)."""
    pixels = upright_pixels()
    sideways = save_sideways(pixels, tmp_path / "sideways.png")
    values = (np.random.default_rng(1).integers(0, 256, (128, 64)) * 200).astype(np.uint16)
    gray16 = tmp_path / "gray16.png"
    Image.fromarray(values).save(gray16)
    expected = model.embed(torch.stack([as_tensor(pixels), as_tensor(sixteen_bit_reference(values))]))
    torch.testing.assert_close(model.embed([sideways, str(gray16)]), expected, atol=1e-5, rtol=0)
    with Image.open(gray16) as image:  # a 16-bit PIL image given directly is scaled the same way
        torch.testing.assert_close(model.embed(image), expected[1:], atol=1e-5, rtol=0)


def test_embed_names_a_file_it_cannot_read(tmp_path, model):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    with pytest.raises(ValueError, match=r"images: cannot read .*broken.jpg"):
        model.embed([broken])
    with pytest.raises(ValueError, match=r"images: cannot read .*missing.jpg: no such file"):
        model.embed([tmp_path / "missing.jpg"])


def test_rank_and_the_grid_read_files_as_training_does(tmp_path, model, capsys):
    """reid.rank's query and gallery, and reid-search's tiles, go through read_image: the distances equal those
    of embeddings of the reference pixels, and the grid shows the 16-bit query as read_image reads it."""
    pixels, other = upright_pixels(0), upright_pixels(5)[::-1].copy()
    query = save_sideways(pixels, tmp_path / "0001_c1_query.png")
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    Image.fromarray(pixels).save(gallery / "0001_c2_upright.png")
    values = (np.random.default_rng(2).integers(0, 256, (128, 64)) * 180).astype(np.uint16)
    Image.fromarray(values).save(gallery / "0002_c1_gray16.png")
    Image.fromarray(other).save(gallery / "0003_c2_other.png")
    references = [as_tensor(pixels), as_tensor(sixteen_bit_reference(values)), as_tensor(other)]
    expected = torch.cdist(model.embed(as_tensor(pixels)), model.embed(torch.stack(references)))[0]
    matches = rank(model, query, gallery, topk=3)
    by_name = {m.path.name: m.distance for m in matches}
    names = ["0001_c2_upright.png", "0002_c1_gray16.png", "0003_c2_other.png"]
    assert [by_name[n] for n in names] == pytest.approx(expected.tolist(), abs=1e-5)
    assert matches[0].path.name == "0001_c2_upright.png" and matches[0].distance < 1e-5

    out = tmp_path / "grid.png"
    gray_query = gallery / "0002_c1_gray16.png"
    assert reid_search.main(["--query", str(gray_query), "--gallery", str(gallery), "--out", str(out)]) == 0
    capsys.readouterr()
    with Image.open(out) as grid:
        tile = np.asarray(grid.convert("RGB").crop((4, 4, 4 + reid_search.TILE[0], 4 + reid_search.TILE[1])))
    np.testing.assert_array_equal(tile, np.asarray(read_image(gray_query).resize(reid_search.TILE)))
