"""What the render command shows is the object: depth maps and points on object pixels only, the mesh without the
box's faces or specks, and a one-line notice for photos far from the model's training data."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import colormaps

import nvs
from nvs import ood, render, writers
from nvs.weights import save_model

o3d = pytest.importorskip("open3d")
SYNTHETIC = Path(__file__).parents[2] / "demos/assets/examples/synthetic_spheres.png"
FAST = ["--size", "16", "--views", "2", "--mesh", "none", "--video", "none"]


def test_depth_map_draws_low_opacity_pixels_as_background():
    depth = np.array([[[9.0, 2.0, 3.0, 0.5]]])  # the 9 and the 0.5 are background and must not stretch the scale
    opacity = np.array([[[0.2, 0.5, 0.9, 0.49]]])
    coloured = writers.colour_depth(depth, writers.object_pixels(opacity))
    assert writers.object_pixels(opacity).tolist() == [[[False, True, True, False]]]
    assert coloured[0, 0, 0].tolist() == [255, 255, 255] and coloured[0, 0, 3].tolist() == [255, 255, 255]
    turbo = colormaps["turbo_r"]
    near, far = (writers.to_uint8(np.array(turbo(x)[:3])).tolist() for x in (0.0, 1.0))
    assert coloured[0, 0, 1].tolist() == near and coloured[0, 0, 2].tolist() == far  # scale: 2..3 only


def ball(grid: np.ndarray, centre, radius: float) -> np.ndarray:
    z, y, x = grid
    return np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) < radius


def test_mesh_keeps_the_sphere_and_drops_the_slab_at_the_box_face_and_specks():
    bound, size = 0.8, 64
    axis = np.linspace(-bound, bound, size, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"))  # z, y, x
    dense = ball(grid, (0.0, 0.0, 0.0), 0.4) | (grid[2] > 0.77) | ball(grid, (0.0, 0.6, 0.0), 0.06)
    density = 10.0 * dense.astype(np.float32)
    vertices, triangles = writers.marching_cubes(density, 5.0, bound)
    assert (vertices[:, 0] > 0.7).any() and (np.linalg.norm(vertices - [0, 0.6, 0], axis=1) < 0.1).any()
    kept, kept_triangles = writers.object_parts(vertices, triangles, bound, margin=2 * bound / 32)
    step = 2 * bound / (size - 1)
    assert len(kept_triangles) > 500 and kept_triangles.max() == len(kept) - 1
    np.testing.assert_allclose(np.linalg.norm(kept, axis=1), 0.4, atol=step)  # the sphere, and only it


def test_mesh_keeps_two_parts_of_similar_size():
    axis = np.linspace(-0.8, 0.8, 48, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"))
    density = 10.0 * (ball(grid, (-0.35, 0, 0), 0.25) | ball(grid, (0.35, 0, 0), 0.2)).astype(np.float32)
    vertices, triangles = writers.marching_cubes(density, 5.0, 0.8)
    kept, _ = writers.object_parts(vertices, triangles, 0.8, margin=0.05)
    assert (kept[:, 0] < -0.1).any() and (kept[:, 0] > 0.1).any() and len(kept) == len(np.unique(triangles))


class FlatField:
    """A field whose every view is mid-grey, so input_view_scores can be checked by hand."""

    focal = 20.0

    def render(self, poses, *, fx, fy, cx, cy, width, height):
        assert torch.equal(poses, torch.eye(4)[None]) and fx == fy == self.focal and (cx, cy) == (width / 2, height / 2)
        return {"rgb": torch.full((1, height, width, 3), 0.5)}


def test_input_view_scores_by_hand():
    image = torch.zeros(3, 4, 6)
    image[:, :, :3] = 1.0  # half white, half black: MSE 0.25 against grey and against the mean colour (also grey)
    scores = ood.input_view_scores(FlatField(), image)
    assert scores["psnr"] == pytest.approx(10 * np.log10(4), abs=1e-3) and scores["gain"] == pytest.approx(0, abs=1e-3)


def test_contrast_is_the_rms_distance_to_the_mean_colour():
    image = torch.zeros(3, 4, 6)
    image[:, :, :3] = 1.0  # half white, half black: every pixel 0.5 from the grey mean
    assert ood.input_view_scores(FlatField(), image)["contrast"] == pytest.approx(0.5, abs=1e-5)
    assert ood.input_view_scores(FlatField(), torch.full((3, 4, 6), 0.3))["contrast"] == 0.0


def test_a_flat_photo_gets_its_own_notice(model, tmp_path):
    flat = ood.notice({"psnr": 40.0, "gain": -90.0, "contrast": 0.0}, "classic synthetic scenes")
    assert "one flat colour" in flat and "\n" not in flat and "far from" not in flat
    assert "one flat colour" not in (ood.notice({"psnr": 12.0, "gain": 0.0, "contrast": 0.2}, None) or "")
    writers.Image.new("RGB", (1, 1), (200, 30, 90)).save(tmp_path / "dot.png")
    summary = nvs.render_to_folder(tmp_path / "dot.png", tmp_path / "dot", model=model, views=2, size=16, mesh="none",
                                   video="none")  # fmt: skip
    assert summary["input_view"]["contrast"] < ood.FLAT_PHOTO_MAX_CONTRAST
    assert sum("one flat colour" in w for w in summary["warnings"]) == 1 and notices(summary) == []


def test_notice_is_one_line_naming_the_data_and_the_config():
    assert ood.notice({"psnr": 25.0, "gain": 3.0}, "classic synthetic scenes") is None
    for scores in ({"psnr": 12.0, "gain": 3.0}, {"psnr": 25.0, "gain": -0.5}):
        line = ood.notice(scores, "classic synthetic scenes")
        assert "\n" not in line and "classic synthetic scenes" in line and "configs/nvs/nvist_mvimgnet.yaml" in line
    assert "does not record" in ood.notice({"psnr": 12.0, "gain": 0.0}, None)


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nvs.load_model()
    model.config.training_data = "880 classic synthetic scenes at 32 px"
    return model


def notices(summary: dict) -> list[str]:
    return [w for w in summary["warnings"] if "far from what the model was trained on" in w]


def noise() -> torch.Tensor:
    return torch.rand(3, 96, 96, generator=torch.Generator().manual_seed(0))


def test_synthetic_scene_gets_no_notice_and_noise_gets_one(model, tmp_path):
    options = dict(views=2, size=16, mesh="none", video="none")
    familiar = nvs.render_to_folder(SYNTHETIC, tmp_path / "scene", model=model, **options)
    assert notices(familiar) == [] and familiar["input_view"]["psnr"] >= ood.INPUT_VIEW_MIN_PSNR
    far = nvs.render_to_folder(noise(), tmp_path / "noise", model=model, **options)
    assert len(notices(far)) == 1 and "880 classic synthetic scenes at 32 px" in notices(far)[0]
    assert json.loads((tmp_path / "noise/summary.json").read_text())["warnings"] == far["warnings"]


def test_cli_says_it_once_with_the_training_data_of_the_models_json(model, tmp_path, capsys):
    save_model(model, tmp_path / "model.safetensors")
    assert json.loads((tmp_path / "model.json").read_text())["training_data"] == model.config.training_data
    photo = tmp_path / "noise.png"
    writers.Image.fromarray(writers.to_uint8(noise().permute(1, 2, 0).numpy())).save(photo)
    code = render.main([str(photo), str(SYNTHETIC), "--out", str(tmp_path / "out"), *FAST, "--checkpoint",
                        str(tmp_path / "model.safetensors")])  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if "far from what the model was trained on" in line]
    assert code == 0 and len(lines) == 1 and str(photo) in lines[0]
    assert model.config.training_data in lines[0] and ood.REAL_DATA_CONFIG in lines[0]


def test_a_model_json_without_training_data_still_loads(model, tmp_path):
    save_model(model, tmp_path / "old.safetensors")
    settings = json.loads((tmp_path / "old.json").read_text())
    del settings["training_data"]
    (tmp_path / "old.json").write_text(json.dumps(settings))
    assert nvs.load_model(tmp_path / "old.safetensors").config.training_data is None
