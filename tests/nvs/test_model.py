"""The NViST model and its public API: nvs.load_model, model.predict, field.render, weights on disk."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import nvs
from nvs import cameras
from nvs.images import load_rgb, prepare_image
from nvs.weights import TINY


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return nvs.NViST(nvs.NViSTConfig(**TINY)).eval()


def test_encode_shapes_and_gradients_reach_everything(model):
    model.train()
    images, condition = torch.rand(2, 3, 32, 32), torch.tensor([[2.0, 1.0], [2.4, 1.2]])
    codes = model.encode(images, condition)
    R, C = model.config.field_resolution, model.config.field_channels
    assert codes.planes.shape == (2, 3, C, R, R) and codes.lines.shape == (2, 3, C, R)
    origins, dirs, _ = cameras.pixel_rays(torch.eye(4)[None].repeat(2, 1, 1), 32.0, 32.0, 16.0, 16.0, 8, 8)
    out = model.render(
        codes, model.to_field_frame(origins.reshape(2, -1, 3), condition[:, 0]), dirs.reshape(2, -1, 3), jitter=True
    )
    (out["rgb"].mean() + out["distortion"].mean()).backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    model.eval()


def test_encoder_positions_are_fixed_sincos(model):
    """MAE's fixed 2-D sin-cos position embedding: as large as the patch tokens from the start, not learned."""
    pos = model.encoder.pos_embed
    assert not pos.requires_grad and torch.all(pos[0, 0] == 0)
    assert 0.5 < pos[0, 1:].pow(2).mean().sqrt() < 1.0


def test_paper_config_size():
    """The paper's NViST: MAE ViT-B encoder and a 12 x 768 decoder writing 816 field tokens."""
    config = nvs.NViSTConfig()
    grid = config.field_resolution // config.token_patch
    assert 3 * grid * grid + 3 * grid == 816
    with pytest.raises(ValueError, match="multiple"):
        nvs.NViSTConfig(field_resolution=50)


def test_predict_and_render_follow_the_api(model):
    field = model.predict(torch.rand(3, 45, 80), focal=60.0, distance=2.0)
    poses = cameras.orbit_poses(3, 2.0, elevation_deg=10)
    out = field.render(poses, fx=30.0, fy=30.0, cx=12.0, cy=10.0, width=24, height=20)
    assert out["rgb"].shape == (3, 20, 24, 3) and out["depth"].shape == (3, 20, 24)
    assert out["rgb"].min() >= 0 and out["rgb"].max() <= 1 and torch.isfinite(out["depth"]).all()
    assert field.focal == pytest.approx(60.0 * 32 / 45)  # focal follows the resize to the model's input
    with pytest.raises(ValueError, match="poses"):
        field.render(torch.eye(4), fx=30.0, fy=30.0, cx=12.0, cy=10.0, width=24, height=20)


def test_rendering_is_chunked_without_changing_the_result(model):
    field = model.predict(torch.rand(3, 32, 32))
    poses = cameras.orbit_poses(2, 2.2)
    full = field.render(poses, fx=30.0, fy=30.0, cx=8.0, cy=8.0, width=16, height=16)
    field.chunk = 37
    chunked = field.render(poses, fx=30.0, fy=30.0, cx=8.0, cy=8.0, width=16, height=16)
    assert torch.allclose(full["rgb"], chunked["rgb"], atol=1e-6)


def test_save_and_load_roundtrip(model, tmp_path):
    path = nvs.save_model(model, tmp_path / "m.safetensors")
    loaded = nvs.load_model(path)
    assert json.loads((tmp_path / "m.json").read_text())["encoder_dim"] == TINY["encoder_dim"]
    image = torch.rand(3, 32, 32)
    a, b = model.predict(image), loaded.predict(image)
    assert torch.equal(a.codes.planes, b.codes.planes)
    assert not list(tmp_path.glob(".*.tmp"))


def test_default_model_says_it_is_untrained_when_none_ships():
    from nvs.weights import DEFAULT_WEIGHTS

    if DEFAULT_WEIGHTS.exists():
        assert isinstance(nvs.load_model(), nvs.NViST)
    else:
        with pytest.warns(UserWarning, match="randomly initialised"):
            nvs.load_model()


def test_broken_checkpoints(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        nvs.load_model(tmp_path / "none.safetensors")
    path = nvs.save_model(model, tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot read"):
        nvs.load_model(path)
    path = nvs.save_model(model, tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text(json.dumps({**TINY, "encoder_dim": 64}))
    with pytest.raises(ValueError, match="does not fit"):
        nvs.load_model(path)
    (tmp_path / "m.json").unlink()
    with pytest.raises(FileNotFoundError, match="config"):
        nvs.load_model(path)


def test_odd_images_are_read_as_rgb(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (10, 14), np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((6, 6, 4), [255, 0, 0, 0], np.uint8), "RGBA").save(tmp_path / "clear.png")
    Image.fromarray(np.full((5, 7), 65535, np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(rng.integers(0, 255, (1, 1, 3), np.uint8)).save(tmp_path / "dot.jpg")
    assert load_rgb(tmp_path / "gray.png").shape == (3, 10, 14)
    assert torch.allclose(load_rgb(tmp_path / "clear.png"), torch.ones(3, 6, 6))  # transparent over white
    assert torch.allclose(load_rgb(tmp_path / "deep.png"), torch.ones(3, 5, 7))  # 16-bit white stays white
    image, scale = prepare_image(tmp_path / "dot.jpg", 32, 32)
    assert image.shape == (3, 32, 32) and scale == 32.0


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "I;16", "P", "CMYK"])
def test_pixels_are_the_files_values_over_the_background(mode, tmp_path):
    """Against float64 numpy on the pixels PIL decodes: value / peak, alpha-composited over the background."""
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (5, 6, 4), np.uint8)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (5, 6)).astype(np.uint16))
        expected = np.asarray(image, np.float64)[..., None].repeat(3, axis=2) / 65535
    else:
        image = Image.fromarray(rgba, "RGBA").convert(mode)
        decoded = np.asarray(image.convert("RGBA"), np.float64) / 255
        alpha = decoded[..., 3:]  # 1 for the modes without transparency
        expected = decoded[..., :3] * alpha + np.array([0.2, 0.5, 0.9]) * (1 - alpha)
    rgb = load_rgb(image, background=(0.2, 0.5, 0.9))
    assert rgb.dtype == torch.float32 and rgb.shape == (3, 5, 6)
    np.testing.assert_allclose(rgb.permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-6)


def test_a_dark_16_bit_photo_stays_dark(tmp_path):
    Image.fromarray(np.full((4, 5), 200, np.uint16)).save(tmp_path / "dark.png")  # 200 of 65535
    assert Image.open(tmp_path / "dark.png").mode == "I;16"
    assert torch.allclose(load_rgb(tmp_path / "dark.png"), torch.full((3, 4, 5), 200 / 65535))


@pytest.mark.parametrize("suffix", [".gif", ".png"])
def test_a_palettes_transparent_colour_shows_the_background(suffix, tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, :, 3] = 255  # top half opaque red; bottom half transparent (red underneath)
    Image.fromarray(rgba, "RGBA").convert("P").save(tmp_path / f"cutout{suffix}", transparency=0)
    with Image.open(tmp_path / f"cutout{suffix}") as saved:
        assert saved.mode == "P" and "transparency" in saved.info  # a palette file, as GIFs and pngquant's are
    rgb = load_rgb(tmp_path / f"cutout{suffix}", background=(0.0, 0.0, 1.0))
    assert torch.equal(rgb[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))  # opaque red
    assert torch.equal(rgb[:, 3, 0], torch.tensor([0.0, 0.0, 1.0]))  # the blue background, not the hidden red


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((4, 8, 3), np.uint8)
    pixels[:, :4] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    rgb = load_rgb(tmp_path / "rotated.jpg")
    assert rgb.shape == (3, 8, 4) and rgb[:, :4].mean() > 0.9 and rgb[:, 4:].mean() < 0.1  # white now on top


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_unreadable_images(content, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(content)
    with pytest.raises(ValueError, match="cannot read"):
        load_rgb(tmp_path / "bad.jpg")
    with pytest.raises(FileNotFoundError):
        load_rgb(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="tensor"):
        load_rgb(torch.zeros(5, 4, 4))
