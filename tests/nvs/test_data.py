"""Scene loading: nerfstudio folders written from nerfstudio's documented format, the synthetic generator,
and the tensors a training item holds."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nvs import cameras
from nvs.data.nerfstudio import find_scenes, read_transforms
from nvs.data.scenes import SceneDataset, read_view_image

ROOT = Path(__file__).resolve().parents[2]


def write_nerfstudio(folder: Path, size=(24, 16)):
    """Two cameras 3 units from the origin, looking at it: one on +z, one on +x (OpenGL: looking down -z)."""
    (folder / "images").mkdir(parents=True)
    w, h = size
    for i in range(2):
        Image.fromarray(np.full((h, w, 3), 60 * (i + 1), np.uint8)).save(folder / "images" / f"{i}.png")
    on_z = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3], [0, 0, 0, 1]]
    on_x = [[0, 0, 1, 3], [0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]]
    meta = {
        "camera_model": "OPENCV",
        "fl_x": 20.0,
        "fl_y": 20.0,
        "cx": w / 2,
        "cy": h / 2,
        "w": w,
        "h": h,
        "k1": 0.0,
        "frames": [
            {"file_path": "images/0.png", "transform_matrix": on_z},
            {"file_path": "images/1.png", "transform_matrix": on_x, "fl_x": 22.0},
        ],
    }
    (folder / "transforms.json").write_text(json.dumps(meta))


def test_nerfstudio_folder_is_read_in_opencv(tmp_path):
    write_nerfstudio(tmp_path / "s")
    scene = read_transforms(tmp_path / "s")
    assert len(scene.views) == 2 and scene.views[1].fx == 22.0 and scene.views[0].width == 24
    # OpenCV cameras look down +z: the first camera, on +z looking at the origin, looks down -z of the world
    assert torch.allclose(scene.views[0].c2w[:3, 2], torch.tensor([0.0, 0.0, -1.0]))


def test_training_item_is_relative_to_the_input_camera(tmp_path):
    write_nerfstudio(tmp_path / "s")
    item = SceneDataset(find_scenes(tmp_path), input_size=(8, 12), target_size=(16, 24), targets=2, input_view=0)[0]
    assert item["image"].shape == (3, 8, 12) and item["targets"].shape == (2, 3, 16, 24)
    assert torch.allclose(item["poses"][0], torch.eye(4), atol=1e-6)  # the input view itself
    assert torch.allclose(item["poses"][1, :3, 3], torch.tensor([3.0, 0.0, 3.0]), atol=1e-5)  # seen from view 0
    assert item["condition"][0] == pytest.approx(3.0)  # the object (origin) is 3 units along the optical axis
    assert item["condition"][1] == pytest.approx(20.0 * 0.5 / 8)  # focal scaled with the image, over its height
    assert item["target_is_input"].tolist() == [True, False]
    assert item["intrinsics"][1].tolist() == pytest.approx([22.0, 20.0, 12.0, 8.0])


@pytest.mark.parametrize(
    "change,error,pattern",
    [
        (lambda m, f: f.joinpath("transforms.json").write_text("{oops"), ValueError, "not valid JSON"),
        (
            lambda m, f: f.joinpath("transforms.json").write_text(json.dumps({**m, "frames": m["frames"][:1]})),
            ValueError,
            "at least two",
        ),
        (
            lambda m, f: f.joinpath("transforms.json").write_text(
                json.dumps({k: v for k, v in m.items() if k != "fl_y"})
            ),
            ValueError,
            "fl_y",
        ),
        (
            lambda m, f: f.joinpath("transforms.json").write_text(
                json.dumps({**m, "frames": [m["frames"][0], {**m["frames"][1], "transform_matrix": [[1, 0], [0, 1]]}]})
            ),
            ValueError,
            "4x4",
        ),
        (lambda m, f: f.joinpath("images", "1.png").unlink(), FileNotFoundError, "1.png"),
        (lambda m, f: f.joinpath("transforms.json").unlink(), FileNotFoundError, "transforms.json"),
    ],
)
def test_malformed_folders_say_what_is_wrong(tmp_path, change, error, pattern):
    folder = tmp_path / "s"
    write_nerfstudio(folder)
    change(json.loads((folder / "transforms.json").read_text()), folder)
    with pytest.raises(error, match=pattern):
        read_transforms(folder)


def _rewrite(folder: Path, **changes) -> None:
    meta = json.loads((folder / "transforms.json").read_text())
    (folder / "transforms.json").write_text(json.dumps({**meta, **changes}))


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"fl_x": "abc"}, "'fl_x' must be a finite number"),
        ({"cx": float("nan")}, "'cx' must be a finite number"),
        ({"fl_y": -10.0}, "'fl_y' must be positive"),
        ({"w": 0}, "'w' must be positive"),
        ({"camera_model": "OPENCV_FISHEYE"}, "OPENCV_FISHEYE.*not a perspective camera"),
        ({"camera_model": "EQUIRECTANGULAR"}, "EQUIRECTANGULAR.*not a perspective camera"),
        ({"frames": [None, None]}, "frame 0 must be a JSON object"),
    ],
)
def test_impossible_cameras_say_what_is_wrong(changes, pattern, tmp_path):
    write_nerfstudio(tmp_path / "s")
    _rewrite(tmp_path / "s", **changes)
    with pytest.raises(ValueError, match=pattern):
        read_transforms(tmp_path / "s")
    (tmp_path / "s" / "transforms.json").write_text("[]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        read_transforms(tmp_path / "s")


def test_lens_distortion_is_named_in_a_warning(tmp_path, recwarn):
    write_nerfstudio(tmp_path / "s")
    read_transforms(tmp_path / "s")  # k1 = 0: nothing to say
    assert not [w for w in recwarn if "distortion" in str(w.message)]
    _rewrite(tmp_path / "s", k1=-0.05, p2=0.001)
    with pytest.warns(UserWarning, match=r"distortion \(k1=-0.05, p2=0.001\) is left out"):
        read_transforms(tmp_path / "s")


def write_orbit(folder: Path, centre: list[float], radius: float = 3.0, views: int = 5) -> None:
    """Cameras on a tilted circle around `centre`, looking at it (OpenGL, as nerfstudio stores them)."""
    (folder / "images").mkdir(parents=True)
    frames = []
    for i in range(views):
        angle = 2 * np.pi * i / views
        eye = torch.tensor(centre) + radius * torch.tensor([np.cos(angle), 0.3 * np.sin(angle), np.sin(angle)])
        c2w = cameras.look_at(eye.float(), torch.tensor(centre).float(), torch.tensor([0.0, -1.0, 0.0]))
        Image.fromarray(np.full((16, 24, 3), 40 * i, np.uint8)).save(folder / "images" / f"{i}.png")
        frames.append({"file_path": f"images/{i}.png", "transform_matrix": cameras.opencv_to_opengl(c2w).tolist()})
    meta = {"fl_x": 20.0, "fl_y": 20.0, "cx": 12.0, "cy": 8.0, "w": 24, "h": 16, "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(meta))


def test_the_object_is_found_where_the_cameras_look(tmp_path):
    """ns-process-data leaves COLMAP's frame, with the object anywhere: "focus" finds it as the point the optical
    axes meet; the world origin ("none") here lies behind some cameras, which is an error, not a silent guess."""
    centre = [1.0, 2.0, -5.0]
    write_orbit(tmp_path / "s", centre)
    scene = read_transforms(tmp_path / "s")
    assert torch.allclose(scene.center, torch.tensor(centre), atol=1e-4)
    item = SceneDataset([scene], input_size=(8, 12), target_size=(8, 12), targets=2, input_view=0)[0]
    assert item["condition"][0] == pytest.approx(3.0, abs=1e-4)  # the orbit's radius
    with pytest.raises(ValueError, match="not in front of the cameras"):
        read_transforms(tmp_path / "s", center="none")
    with pytest.raises(ValueError, match="center: expected one of"):
        read_transforms(tmp_path / "s", center="middle")


def test_a_downscaled_copy_scales_the_intrinsics(tmp_path):
    """Intrinsics written for 48x32 images, files of 24x16 (as nerfstudio's images_2): the item is the one of
    the same scene described at 24x16."""
    write_nerfstudio(tmp_path / "half")
    write_nerfstudio(tmp_path / "full")
    meta = json.loads((tmp_path / "full/transforms.json").read_text())
    frames = [meta["frames"][0], {**meta["frames"][1], "fl_x": 44.0}]
    _rewrite(tmp_path / "full", fl_x=40.0, fl_y=40.0, cx=24.0, cy=16.0, w=48, h=32, frames=frames)
    options = dict(input_size=(8, 12), target_size=(16, 24), targets=2, input_view=0)
    half = SceneDataset([read_transforms(tmp_path / "half")], **options)[0]
    full = SceneDataset([read_transforms(tmp_path / "full")], **options)[0]
    assert full["intrinsics"].tolist() == half["intrinsics"].tolist()
    assert torch.equal(full["condition"], half["condition"])
    _rewrite(tmp_path / "full", w=48, h=48)  # another aspect ratio than the files'
    with pytest.raises(ValueError, match="another aspect ratio"):
        SceneDataset([read_transforms(tmp_path / "full")], **options)[0]


def test_view_images_keep_the_stored_pixel_grid(tmp_path):
    """Camera calibrations refer to the stored pixels: an EXIF rotation tag must not turn a view's image."""
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° to display"
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(tmp_path / "v.jpg", exif=exif)
    assert read_view_image(tmp_path / "v.jpg").shape == (3, 16, 24)


def test_random_input_views_follow_torch_seed(tmp_path):
    """Training items draw their input view from torch's generator: the same seed gives the same draws (what
    seed_everything promises), and both views get drawn."""
    write_nerfstudio(tmp_path / "s")
    dataset = SceneDataset(find_scenes(tmp_path), input_size=(8, 12), target_size=(8, 12), targets=2)

    def draws(seed):
        torch.manual_seed(seed)
        return [int(dataset[0]["image"].mean() * 255 + 0.5) for _ in range(12)]  # the views are flat 60 and 120

    assert draws(0) == draws(0) and draws(1) == draws(1)
    assert set(draws(0)) == {60, 120}


def generate_with_the_cli(out, scenes: int) -> subprocess.CompletedProcess:
    """`python -m nvs.data.synthetic` with 4 views of 24² per scene, seed 5."""
    command = [sys.executable, "-m", "nvs.data.synthetic", "--out", str(out), "--scenes", str(scenes)]
    command += ["--views", "4", "--size", "24", "--seed", "5"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_synthetic_generator_writes_consistent_scenes(tmp_path):
    result = generate_with_the_cli(tmp_path, scenes=3)
    assert result.returncode == 0, result.stderr
    scenes = find_scenes(tmp_path)
    assert [len(s.views) for s in scenes] == [4, 4, 4]
    for scene in scenes:
        images = [np.asarray(Image.open(v.image)) for v in scene.views]
        assert all(im.shape == (24, 24, 3) for im in images)
        assert len({im.tobytes() for im in images}) == 4  # views differ
        centre = np.mean([im[8:16, 8:16].astype(float) for im in images], axis=0)
        border = np.mean([np.concatenate([im[:3].reshape(-1, 3), im[-3:].reshape(-1, 3)]) for im in images], axis=0)
        assert np.abs(centre.mean(axis=(0, 1)) - border.mean(axis=0)).sum() > 10  # an object in front of a background
        for view in scene.views:  # every camera looks at the object at the origin
            forward, eye = view.c2w[:3, 2], view.c2w[:3, 3]
            assert torch.allclose(forward, -eye / eye.norm(), atol=1e-5)
    again = tmp_path / "again"
    assert generate_with_the_cli(again, scenes=1).returncode == 0
    assert (again / "scene_00000/images/frame_00002.png").read_bytes() == (
        tmp_path / "scene_00000/images/frame_00002.png"
    ).read_bytes()  # the same seed gives the same scene
    assert not list(tmp_path.glob(".scene_*"))  # no temporary folders left


def test_synthetic_sphere_tracer_matches_analytic_ray_sphere_hits():
    """The sphere tracer (which stops marching each ray once it lands or leaves) against the closed-form
    ray-sphere intersection: the same pixels show the object, up to a few grazing ones at the silhouette."""
    from nvs.data import synthetic

    scene = synthetic.Scene(np.random.default_rng(3), [])
    scene.shape, scene.rotation, scene.size, scene.params = "sphere", np.eye(3), 0.6, np.array([0.5, 1.0, 1.0])
    radius = 0.75 * 0.5**0.2 * 0.6
    size, focal = 48, 50.0
    for seed in range(3):
        c2w = synthetic.camera(np.random.default_rng(seed))
        image = synthetic.render(scene, c2w, focal, size)
        v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
        dirs = np.stack([(u - size / 2) / focal, -(v - size / 2) / focal, -np.ones_like(u)], -1) @ c2w[:3, :3].T
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        eye = c2w[:3, 3]
        along = dirs @ eye  # |eye + t d|^2 = r^2 has a real root in front of the camera
        hits = (along**2 - (eye @ eye - radius**2) >= 0) & (along < 0)
        shown = np.abs(image - scene.background(dirs)).max(axis=-1) > 1e-6
        assert 0.05 < hits.mean() < 0.6
        assert (hits != shown).sum() <= 0.02 * size * size, (seed, (hits != shown).sum())


def test_generated_scenes_are_reused_only_for_the_same_settings(tmp_path):
    from nvs.data.datamodule import NViSTData

    spec = {"scenes": 2, "views": 2, "size": 8, "seed": 4}
    NViSTData(root=str(tmp_path), generate=spec).prepare_data()
    first = (tmp_path / "scene_00001/images/frame_00001.png").stat().st_mtime_ns
    NViSTData(root=str(tmp_path), generate=dict(spec)).prepare_data()  # same settings: nothing rendered again
    assert (tmp_path / "scene_00001/images/frame_00001.png").stat().st_mtime_ns == first
    with pytest.raises(ValueError, match="rendered with .*\"scenes\": 2.*not the requested .*'scenes': 3"):
        NViSTData(root=str(tmp_path), generate={**spec, "scenes": 3}).prepare_data()
    (tmp_path / ".complete").write_text("")  # a folder from before the settings were recorded
    with pytest.raises(ValueError, match="unrecorded settings"):
        NViSTData(root=str(tmp_path), generate=spec).prepare_data()


def test_synthetic_generator_rejects_bad_arguments(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nvs.data.synthetic", "--out", str(tmp_path), "--views", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--views" in result.stderr


def test_testing_alone_may_hold_out_every_scene_but_fitting_may_not(tmp_path):
    from nvs.data.datamodule import NViSTData

    sizes = {f"{role}_{side}": 8 for role in ("input", "target") for side in ("height", "width")}
    data = NViSTData(root=str(tmp_path), holdout_every=1, generate={"scenes": 2, "views": 2, "size": 8}, **sizes)
    data.prepare_data()
    data.setup("test")
    assert len(data.val_set) == 2 and data.train_set is None
    with pytest.raises(ValueError, match="2 scenes cannot be split with holdout_every=1"):
        data.setup("fit")


def test_cached_images_give_the_same_batches_and_decode_each_file_once(tmp_path, monkeypatch):
    from collections import Counter

    from nvs import images
    from nvs.data.datamodule import NViSTData

    decoded = Counter()
    original = images.open_image
    monkeypatch.setattr(images, "open_image", lambda path, *a: decoded.update([str(path)]) or original(path, *a))
    sizes = {f"{role}_{side}": 16 for role in ("input", "target") for side in ("height", "width")}
    spec = {"scenes": 4, "views": 3, "size": 16}

    def two_epochs_and_validation(**kwargs) -> list[torch.Tensor]:
        data = NViSTData(root=str(tmp_path), holdout_every=4, targets=2, batch_size=1, generate=spec, **sizes, **kwargs)
        data.prepare_data()
        data.setup("fit")
        torch.manual_seed(0)  # the input views and the shuffling
        batches = [b for _ in range(2) for b in data.train_dataloader()] + list(data.val_dataloader())
        return [torch.cat([b["image"].flatten(), b["targets"].flatten()]) for b in batches]

    plain = two_epochs_and_validation()
    assert max(decoded.values()) > 1  # without the cache a file is decoded every time it is read
    files, decoded = set(decoded), Counter()
    cached = two_epochs_and_validation(cache_images=True)
    assert len(plain) == 3 * 2 + 1 and all(torch.equal(a, b) for a, b in zip(plain, cached, strict=True))
    assert set(decoded) == files and set(decoded.values()) == {1}
