"""Object masks and depth maps: the files (nvs/data/masks_depth.py) round-trip, the nerfstudio loader and the
training items read them, bad files get clear errors, and the generator's masks and depth agree with its colour
and with closed-form ray-sphere hits."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nvs.data import raymarch, synthetic
from nvs.data.masks_depth import read_depth, read_mask, write_depth, write_mask
from nvs.data.nerfstudio import read_transforms
from nvs.data.scenes import SceneDataset

from .test_data import write_nerfstudio


def add_masks_and_depth(folder: Path, masks: list[np.ndarray], depths: list[np.ndarray], scale=1e-3, ext=".png"):
    """Give the two-view fixture of test_data per-frame mask_path and depth_file_path (nerfstudio's keys)."""
    meta = json.loads((folder / "transforms.json").read_text())
    for i, frame in enumerate(meta["frames"]):
        write_mask(folder / f"mask{i}.png", masks[i])
        if ext == ".npy":
            np.save(folder / f"depth{i}.npy", depths[i] / scale)
        else:
            write_depth(folder / f"depth{i}.png", depths[i], scale)
        frame["mask_path"], frame["depth_file_path"] = f"mask{i}.png", f"depth{i}{ext}"
    meta["depth_unit_scale_factor"] = scale
    (folder / "transforms.json").write_text(json.dumps(meta))


def fixture_geometry(h=16, w=24):
    masks = [np.zeros((h, w), bool), np.zeros((h, w), bool)]
    masks[0][4:10, 6:12] = True
    masks[1][2:5, 1:20] = True
    depths = [np.where(m, 2.0 + 0.01 * np.arange(w), 0.0) for m in masks]
    return masks, depths


@pytest.mark.parametrize("mode, value", [("L", 1), ("L", 255), ("1", 1), ("I;16", 1), ("I;16", 65535)])
def test_a_mask_pixel_is_object_where_it_is_not_zero(mode, value, tmp_path):
    """As nerfstudio reads `mask_path` (any non-zero value): 0/1 masks as well as 0/255 ones."""
    mask = np.random.default_rng(0).random((5, 7)) > 0.5
    dtype = np.uint16 if mode == "I;16" else np.uint8
    image = Image.fromarray(mask) if mode == "1" else Image.fromarray(np.where(mask, value, 0).astype(dtype))
    image.save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode == mode
    assert np.array_equal(read_mask(tmp_path / "m.png"), mask.astype(np.float32))


def test_mask_and_depth_files_round_trip(tmp_path):
    mask = np.random.default_rng(0).random((5, 7)) > 0.5
    write_mask(tmp_path / "m.png", mask)
    assert np.array_equal(read_mask(tmp_path / "m.png"), mask.astype(np.float32))
    depth = np.random.default_rng(1).uniform(0.5, 6.0, (5, 7)) * mask
    write_depth(tmp_path / "d.png", depth, 1e-4)
    assert Image.open(tmp_path / "d.png").mode.startswith("I")  # 16-bit, not 8
    assert np.abs(read_depth(tmp_path / "d.png", 1e-4) - depth).max() <= 0.5e-4 + 1e-6
    np.save(tmp_path / "d.npy", (depth * 1000).astype(np.float32))
    assert np.allclose(read_depth(tmp_path / "d.npy", 1e-3), depth, atol=1e-5)


@pytest.mark.parametrize("ext", [".png", ".npy"])
def test_loader_and_training_item_carry_masks_and_depth(tmp_path, ext):
    folder = tmp_path / "s"
    write_nerfstudio(folder)
    masks, depths = fixture_geometry()
    add_masks_and_depth(folder, masks, depths, scale=2e-4, ext=ext)
    scene = read_transforms(folder, scale=0.5)
    assert scene.views[1].mask == folder / "mask1.png" and scene.views[1].depth_scale == 2e-4
    item = SceneDataset([scene], input_size=(8, 12), target_size=(16, 24), targets=2, input_view=0, geometry=True)[0]
    assert torch.equal(item["masks"], torch.from_numpy(np.stack(masks)).float())
    assert torch.equal(item["input_mask"], item["masks"][0])
    # depth comes back in field units: world units times the scene's scale
    assert torch.allclose(item["depths"], torch.from_numpy(np.stack(depths)).float() * 0.5, atol=1e-4)
    plain = SceneDataset([scene], input_size=(8, 12), target_size=(16, 24), targets=2, input_view=0)[0]
    assert "masks" not in plain and "depths" not in plain  # training items do not read them


def test_masks_and_depth_follow_the_image_when_it_is_resized(tmp_path):
    """Halving the 24x16 views: masks are filtered like the image into coverage (the 6x6 object block becomes a
    3x3 block above one half, the background stays 0), depth takes one sample of its block (no mixing with the
    background's 0)."""
    folder = tmp_path / "s"
    write_nerfstudio(folder)
    masks, depths = fixture_geometry()
    add_masks_and_depth(folder, masks, depths)
    item = SceneDataset([read_transforms(folder)], (8, 12), (8, 12), targets=2, input_view=0, geometry=True)[0]
    assert item["masks"].shape == (2, 8, 12) and item["depths"].shape == (2, 8, 12)
    assert item["masks"][0, 3, 4] == 1 and item["masks"][0, 2:5, 3:6].min() > 0.5
    assert item["masks"][0, :, :2].max() == 0 and item["masks"][0, 6:].max() == 0
    object_depths = item["depths"][0][item["depths"][0] > 0]
    assert object_depths.min() >= 2.0 - 1e-3 and object_depths.max() <= 2.23 + 1e-3


def test_scenes_without_masks_still_load(tmp_path):
    write_nerfstudio(tmp_path / "s")
    scene = read_transforms(tmp_path / "s")
    assert scene.views[0].mask is None and scene.views[0].depth is None
    item = SceneDataset([scene], (8, 12), (8, 12), targets=2, input_view=0, geometry=True)[0]
    assert "masks" not in item


def test_missing_mask_file_names_the_frame_and_key(tmp_path):
    folder = tmp_path / "s"
    write_nerfstudio(folder)
    add_masks_and_depth(folder, *fixture_geometry())
    (folder / "mask1.png").unlink()
    with pytest.raises(FileNotFoundError, match="frame 1 mask_path .*mask1.png"):
        read_transforms(folder)


def test_mask_of_the_wrong_size_is_a_clear_error(tmp_path):
    folder = tmp_path / "s"
    write_nerfstudio(folder)
    add_masks_and_depth(folder, *fixture_geometry())
    write_mask(folder / "mask1.png", np.ones((10, 10), bool))
    dataset = SceneDataset([read_transforms(folder)], (8, 12), (16, 24), targets=2, input_view=0, geometry=True)
    with pytest.raises(ValueError, match=r"mask: .*mask1.png is 10x10 but its image is 24x16"):
        dataset[0]


@pytest.mark.parametrize(
    "write,pattern",
    [
        (lambda p: Image.new("RGB", (4, 4)).save(p), "single-channel"),
        (lambda p: p.write_bytes(b"not a png"), "cannot read"),
    ],
)
def test_unreadable_depth_files_are_clear_errors(tmp_path, write, pattern):
    write(tmp_path / "d.png")
    with pytest.raises(ValueError, match=pattern):
        read_depth(tmp_path / "d.png")


def test_bad_depth_scale_and_out_of_range_depth_are_refused(tmp_path):
    folder = tmp_path / "s"
    write_nerfstudio(folder)
    meta = json.loads((folder / "transforms.json").read_text())
    (folder / "transforms.json").write_text(json.dumps({**meta, "depth_unit_scale_factor": -1}))
    with pytest.raises(ValueError, match="depth_unit_scale_factor"):
        read_transforms(folder)
    with pytest.raises(ValueError, match="16-bit"):
        write_depth(tmp_path / "d.png", np.full((2, 2), 7.0), 1e-4)  # 70000 units does not fit


def _sphere_scene():
    scene = synthetic.Scene(np.random.default_rng(3), [])
    scene.shape, scene.rotation, scene.size, scene.params = "sphere", np.eye(3), 0.6, np.array([0.5, 1.0, 1.0])
    return scene, 0.75 * 0.5**0.2 * 0.6


def test_traced_depth_and_mask_match_closed_form_ray_sphere_hits():
    """The tracer's hits and z-depths against the analytic ray-sphere intersection, and the colour is the
    background exactly where (and only where) the mask says there is no object."""
    scene, radius = _sphere_scene()
    size, focal = 40, 45.0
    for seed in range(2):
        c2w = synthetic.camera(np.random.default_rng(seed))
        out = raymarch.trace(scene, c2w, focal, size)
        v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
        cam = np.stack([(u - size / 2) / focal, -(v - size / 2) / focal, -np.ones_like(u)], -1)
        dirs = cam @ c2w[:3, :3].T
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        eye = c2w[:3, 3]
        along = dirs @ eye
        disc = along**2 - (eye @ eye - radius**2)
        hits = (disc >= 0) & (along < 0)
        t = -along - np.sqrt(np.maximum(disc, 0))
        z = t * (dirs @ -c2w[:3, 2])  # distance along the camera's viewing axis (OpenGL looks down -z)
        both = hits & out["hit"]
        assert (hits != out["hit"]).sum() <= 0.02 * size * size
        # sphere tracing stops within 1e-3 of the surface: the point the depth map puts on each ray lies that
        # close to the sphere, and the z-depth is within 1% of the exact one even on grazing rays
        cos = dirs @ -c2w[:3, 2]
        points = eye + (out["depth"][both] / cos[both])[:, None] * dirs[both]
        assert np.abs(np.linalg.norm(points, axis=-1) - radius).max() < 1.01e-3
        assert np.abs(out["depth"][both] / z[both] - 1).max() < 0.01
        assert (out["depth"][~out["hit"]] == 0).all()
        background = np.clip(scene.background(dirs), 0, 1)
        assert np.array_equal(out["rgb"][~out["hit"]], background[~out["hit"]])
        assert (np.abs(out["rgb"][out["hit"]] - background[out["hit"]]).max(axis=-1) > 1e-6).all()


def test_supersampled_mask_and_depth_pool_the_same_sub_rays():
    scene, _ = _sphere_scene()
    c2w = synthetic.camera(np.random.default_rng(0))
    small = raymarch.supersampled(scene, c2w, 30.0, 16)
    big = raymarch.trace(scene, c2w, 60.0, 32)
    blocks = big["hit"].reshape(16, 2, 16, 2).sum(axis=(1, 3))
    assert np.array_equal(small["mask"], blocks >= 2)
    sums = big["depth"].reshape(16, 2, 16, 2).sum(axis=(1, 3))
    assert np.allclose(small["depth"][small["mask"]], (sums / np.maximum(blocks, 1))[small["mask"]])
    assert (small["depth"][~small["mask"]] == 0).all()
