"""python -m nvs.render end to end on generated photos: every output valid, bad inputs, seeds, the fast renderer."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nvs
from nvs import render, writers
from nvs.baked import BakedField
from nvs.cameras import orbit_poses
from nvs.data.nerfstudio import read_transforms
from nvs.weights import TINY

from ..help_imports import help_and_imports

o3d = pytest.importorskip("open3d")
FAST = ["--size", "32", "--views", "4", "--mc-resolution", "32"]


def photo(size=(48, 40), mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    gradient = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    rgb = np.clip(gradient + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb)
    if mode == "RGBA":
        image.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))))
    elif mode == "L":
        image = image.convert("L")
    elif mode == "I;16":
        image = Image.fromarray((np.asarray(image.convert("L"), np.uint16) * 257).astype(np.uint16))
    return image


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    exif_rotated = photo((40, 24))
    exif = exif_rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif_rotated.save(folder / "rotated.jpg", exif=exif)
    photo().save(folder / "plain.jpg")
    photo(mode="L").save(folder / "gray.png")
    photo(mode="RGBA").save(folder / "alpha.png")
    photo(mode="I;16").save(folder / "deep.png")
    photo((20, 30)).save(folder / "small.webp")
    photo((64, 32)).save(folder / "wide.bmp")
    photo().save(folder / "scan.tiff")
    return sorted(p for p in folder.iterdir())


def run(capsys, *args) -> tuple[int, str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = render.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


@pytest.fixture(scope="module")
def rendered(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    code = render.main([*map(str, photos), "--out", str(out), *FAST, "--points", "--seed", "3"])
    return code, out


def test_every_photo_gets_every_output(photos, rendered):
    code, out = rendered
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.stem for p in photos)  # no temporary folders left
    meshes = 0
    for folder in out.iterdir():
        views = [np.asarray(Image.open(folder / f"views/{i:03d}.png")) for i in range(4)]
        assert all(v.shape == (32, 32, 3) for v in views)
        assert any(np.abs(views[0].astype(int) - v).sum() > 0 for v in views[1:])  # views differ
        depth, opacity = np.load(folder / "depth.npy"), np.load(folder / "opacity.npy")
        assert depth.shape == opacity.shape == (4, 32, 32) and np.isfinite(depth).all()
        background = opacity < 0.5  # drawn white in the depth maps; object pixels never are (turbo has no white)
        coloured = np.stack([np.asarray(Image.open(folder / f"depth/{i:03d}.png")) for i in range(4)])
        assert coloured.shape == (4, 32, 32, 3)
        assert ((coloured == 255).all(axis=-1) == background).all()
        with Image.open(folder / "orbit.gif") as gif:
            assert gif.n_frames == 4
        cloud = o3d.io.read_point_cloud(str(folder / "points.ply"))
        assert len(cloud.points) == (~background).sum()  # object pixels only
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["model"]["config"]["field_resolution"] > 0 and "id" in summary["model"]
        assert len(summary["cameras"]["views"]) == 4 and summary["timings_s"]["total"] > 0
        if summary["mesh"] is None:  # these noise photos are far from the training data: a field may hold no surface
            assert not (folder / "mesh.ply").exists()
            assert any("no mesh written" in warning for warning in summary["warnings"])
            continue
        meshes += 1
        mesh = o3d.io.read_triangle_mesh(str(folder / "mesh.ply"))
        assert len(mesh.triangles) > 0 and mesh.has_vertex_colors()
        assert summary["mesh"]["triangles"] == len(mesh.triangles)
    assert meshes >= len(photos) - 2


def test_nerfstudio_dataset_reads_back(rendered):
    _, out = rendered
    folder = out / "plain"
    meta = json.loads((folder / "nerfstudio/transforms.json").read_text())
    for key in ("camera_model", "fl_x", "fl_y", "cx", "cy", "w", "h", "frames"):
        assert key in meta
    assert meta["camera_model"] == "OPENCV" and meta["w"] == 32
    assert all((folder / "nerfstudio" / f["file_path"]).is_file() for f in meta["frames"])
    assert (folder / "nerfstudio" / meta["ply_file_path"]).is_file()
    scene = read_transforms(folder / "nerfstudio")  # our own reader: OpenGL matrices back to OpenCV
    summary = json.loads((folder / "summary.json").read_text())
    world_from_camera = np.array(summary["cameras"]["world_from_camera"])
    for view, entry in zip(scene.views, summary["cameras"]["views"], strict=True):
        np.testing.assert_allclose(view.c2w.numpy(), world_from_camera @ np.array(entry["c2w"]), atol=1e-5)
    # view 0 is the input camera: at distance d in front of the object, looking down −z, y up
    d = summary["cameras"]["input_distance"]
    np.testing.assert_allclose(meta["frames"][0]["transform_matrix"][2][3], d, atol=1e-5)


def test_same_seed_same_files(photos, rendered, tmp_path, capsys):
    _, first = rendered
    code, _, _ = run(capsys, photos[0], "--out", tmp_path, *FAST, "--points", "--seed", "3")
    assert code == 0
    a, b = first / photos[0].stem, tmp_path / photos[0].stem
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in files:
        if name.name == "summary.json":
            left, right = (json.loads((root / name).read_text()) for root in (a, b))
            left.pop("timings_s"), right.pop("timings_s")
            assert left == right
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_bad_inputs_are_reported_and_skipped(photos, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.jpg").write_text("not an image at all")
    (bad / "empty.png").write_bytes(b"")
    (bad / "folder.png").mkdir()
    data = (photos[0].parent / "gray.png").read_bytes()
    (bad / "truncated.png").write_bytes(data[: len(data) // 2])
    inputs = [bad / "missing.jpg", bad / "notes.jpg", bad / "empty.png", bad / "folder.png", bad / "truncated.png"]
    out = tmp_path / "out"
    code, stdout, err = run(capsys, inputs[0], photos[0], *inputs[1:], "--out", out, *FAST)
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == len(inputs)
    for path in inputs:
        assert sum(str(path) in line for line in lines) == 1
    assert [p.name for p in out.iterdir()] == [photos[0].stem]  # the good photo only, no leftovers
    assert str(photos[0]) in stdout


def test_unwritable_out_writes_nothing(photos, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder would go")
    under_it = f"{blocker} is a file, so no folder can be made under it"
    for out, reason in ((blocker / "out", under_it), (blocker, "is a file, not a folder")):
        code, stdout, err = run(capsys, photos[0], photos[1], "--out", out, *FAST)
        assert code == 2 and stdout == ""
        assert error_lines(err) == [f"python -m nvs.render: error: --out {out}: {reason}"]  # one line, not per photo
        assert "File exists" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert blocker.read_text() == "a file where the output folder would go"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made")
def test_out_where_no_folder_can_be_made_says_so(photos, capsys):
    code, _, err = run(capsys, photos[0], "--out", "/proc/nvs-render-test", *FAST)
    assert code == 2
    assert error_lines(err) == [
        "python -m nvs.render: error: --out /proc/nvs-render-test: cannot create folders in /proc "
        "(No such file or directory)"
    ]


def test_a_file_where_an_output_folder_goes_is_kept(photos, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / photos[0].stem).write_text("the user's own file")
    code, stdout, err = run(capsys, photos[0], photos[1], "--out", out, *FAST, "--mesh", "none", "--video", "none")
    assert code == 2
    assert (out / photos[0].stem).read_text() == "the user's own file"  # not replaced
    assert error_lines(err) == [
        f"python -m nvs.render: error: {photos[0]}: {out / photos[0].stem} exists and is not a folder: not "
        "replaced (move or rename it)"
    ]
    assert (out / photos[1].stem / "summary.json").is_file() and str(photos[1]) in stdout  # the other one still
    assert sorted(p.name for p in out.iterdir()) == sorted([photos[0].stem, photos[1].stem])  # no leftovers
    with pytest.raises(nvs.InputError, match="not a folder"):
        nvs.render_to_folder(photos[1], out / photos[0].stem, views=1, size=8, mesh="none", video="none")
    assert (out / photos[0].stem).read_text() == "the user's own file"


@pytest.mark.parametrize("elevation", [90.0, -90.0])
def test_elevation_at_the_poles_gives_proper_cameras(photos, tmp_path, capsys, elevation):
    out = tmp_path / "out"
    code, _, _ = run(capsys, photos[1], "--out", out, *FAST, "--elevation", elevation, "--mesh", "none")
    assert code == 0
    summary = json.loads((out / photos[1].stem / "summary.json").read_text())
    d = summary["cameras"]["input_distance"]
    for view in summary["cameras"]["views"]:
        c2w = np.array(view["c2w"])
        rotation = c2w[:3, :3]
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-6)  # no zero columns
        assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(c2w[:3, 3], [0, -d if elevation > 0 else d, d], atol=1e-5)  # above / below
        np.testing.assert_allclose(rotation[:, 2], [0, 1 if elevation > 0 else -1, 0], atol=1e-6)  # looks at it
    frames = json.loads((out / photos[1].stem / "nerfstudio/transforms.json").read_text())["frames"]
    assert all(abs(np.linalg.det(np.array(f["transform_matrix"])[:3, :3]) - 1) < 1e-5 for f in frames)


@pytest.mark.parametrize("elevation", ["120", "-90.5", "nan"])
def test_elevation_beyond_the_poles_is_refused(tmp_path, capsys, elevation):
    with pytest.raises(SystemExit) as exit_info:
        render.parse_args([str(tmp_path / "x.jpg"), "--elevation", elevation])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--elevation must be between -90 and 90 degrees" in err[0]


def test_ctrl_c_keeps_finished_photos_and_exits_130(photos, tmp_path, capsys, monkeypatch):
    from nvs import outputs

    real = outputs.write_folder
    calls = []

    def interrupted_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "write_folder", interrupted_on_the_second)
    out = tmp_path / "out"
    code, stdout, err = run(capsys, *photos[:3], "--out", out, *FAST, "--mesh", "none", "--video", "none")
    assert code == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == "python -m nvs.render: interrupted: 1 of 3 photo(s) finished and kept"
    assert [p.name for p in out.iterdir()] == [photos[0].stem]  # the finished one stays, nothing half-written
    assert (out / photos[0].stem / "summary.json").is_file()


def test_help_answers_without_torch_and_without_warnings():
    """`python -m nvs.render --help` parses its arguments before importing torch (the slow part of start-up),
    and running the command module does not find it already imported by the package (RuntimeWarning)."""
    result, imported = help_and_imports("nvs.render")
    assert result.returncode == 0 and "usage: python -m nvs.render" in result.stdout
    assert {"nvs", "nvs.errors", "argparse"} <= imported  # importtime's report is there
    assert not {"torch", "timm", "lightning", "numpy"} & imported
    assert "RuntimeWarning" not in result.stderr and "Traceback" not in result.stderr


def test_no_progress_bar_when_not_a_terminal_or_quiet(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    code, _, err = run(capsys, photos[1], "--out", tmp_path / "a", *FAST, "--mesh", "none", "--quiet")
    assert code == 0 and "rendering" not in err and "photo/s" not in err


def test_argument_errors_are_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        render.parse_args([str(tmp_path / "x.jpg"), "--size", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--size" in err
    if not writers.mp4_available():
        with pytest.raises(SystemExit):
            render.parse_args([str(tmp_path / "x.jpg"), "--video", "mp4"])
        assert "PyAV" in capsys.readouterr().err


def test_rerun_replaces_the_folder_and_handles_shared_stems(photos, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    twin = other / photos[0].name
    twin.write_bytes(photos[0].read_bytes())
    out = tmp_path / "out"
    (out / photos[0].stem).mkdir(parents=True)
    (out / photos[0].stem / "stale.txt").write_text("from an older run")
    code, _, _ = run(capsys, photos[0], twin, "--out", out, *FAST, "--mesh", "none", "--video", "none")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([photos[0].stem, photos[0].stem + "-2"])
    assert not (out / photos[0].stem / "stale.txt").exists()


def assert_baked_renders_like(field, poses, kwargs, chunk):
    expected = field.render(poses, **kwargs)
    got = BakedField(field, chunk=chunk).render(poses, **kwargs)
    torch.testing.assert_close(got["rgb"], expected["rgb"], atol=1e-5, rtol=0)
    torch.testing.assert_close(got["depth"], expected["depth"], atol=1e-4, rtol=0)
    torch.testing.assert_close(got["opacity"], expected["opacity"], atol=1e-5, rtol=0)


def test_baked_field_renders_like_the_field():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nvs.load_model()
    field = model.predict(torch.rand(3, 40, 50))
    poses = orbit_poses(2, field.distance, 25.0)
    kwargs = dict(fx=30.0, fy=28.0, cx=20.0, cy=17.0, width=40, height=34)
    assert_baked_renders_like(field, poses, kwargs, chunk=700)


@pytest.mark.parametrize("activation", ["relu", "softplus", "floored_softplus"])
def test_baked_field_renders_like_the_field_for_each_density_activation(activation):
    """Planes scaled up so the summed density channels span well past the floored softplus's floor (-8)."""
    torch.manual_seed(0)
    model = nvs.NViST(nvs.NViSTConfig(**{**TINY, "density_activation": activation})).eval()
    field = model.predict(torch.rand(3, 32, 32))
    field.codes.planes.mul_(40.0)
    poses = orbit_poses(2, field.distance, 25.0)
    kwargs = dict(fx=30.0, fy=28.0, cx=16.0, cy=16.0, width=24, height=24)
    assert_baked_renders_like(field, poses, kwargs, chunk=500)


@pytest.mark.parametrize("ext", ["ply", "obj", "glb"])
def test_mesh_of_a_sphere(tmp_path, ext):
    axis = np.linspace(-1, 1, 24, dtype=np.float32)
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    density = 10.0 * (np.sqrt(x**2 + y**2 + z**2) < 0.6)  # dense inside a ball of radius 0.6
    level, warning = writers.iso_level(density, field_resolution=24, bound=1.0)
    assert warning is None and 0 < level < 10
    vertices, triangles = writers.marching_cubes(density, level, bound=1.0)
    radius = np.linalg.norm(vertices, axis=1)
    assert len(triangles) > 100 and np.all(np.abs(radius - 0.6) < 0.1)
    normals = writers.vertex_normals(vertices, triangles)
    assert (np.sum(normals * vertices, axis=1) > 0).mean() > 0.99  # wound outwards
    colours = np.clip(vertices * 0.5 + 0.5, 0, 1)
    writers.write_mesh(tmp_path / f"mesh.{ext}", vertices, triangles, colours)
    mesh = o3d.io.read_triangle_mesh(str(tmp_path / f"mesh.{ext}"))
    assert len(mesh.triangles) == len(triangles) and mesh.has_vertex_colors()


def test_constant_density_gives_no_mesh():
    level, warning = writers.iso_level(np.full((8, 8, 8), 0.5, np.float32), field_resolution=8, bound=1.0)
    assert level is None and "no mesh" in warning


def test_mp4_video_decodes_with_every_view(photos, tmp_path):
    import av

    out = tmp_path / "out"
    args = [str(photos[1]), "--out", str(out), "--views", "5", "--size", "32", "--video", "mp4", "--mesh", "none"]
    assert render.main(args) == 0
    with av.open(str(out / photos[1].stem / "orbit.mp4")) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape[:2] == (32, 32)
    assert oct((out / photos[1].stem).stat().st_mode & 0o777) != oct(0o700)


def test_render_to_folder_writes_what_the_cli_writes(tmp_path, photos):
    """The Python entry point shares the CLI's code path: same seed, same options -> the same view bytes."""
    options = {"views": 3, "size": 32, "video": "none", "mesh": "none", "seed": 5}
    assert (
        render.main(
            [
                str(photos[0]),
                "--out",
                str(tmp_path / "cli"),
                "--views",
                "3",
                "--size",
                "32",
                "--video",
                "none",
                "--mesh",
                "none",
                "--seed",
                "5",
            ]
        )
        == 0
    )
    summary = nvs.render_to_folder(photos[0], tmp_path / "api" / "photo", **options)
    cli = tmp_path / "cli" / photos[0].stem
    for i in range(3):
        assert (tmp_path / f"api/photo/views/{i:03d}.png").read_bytes() == (cli / f"views/{i:03d}.png").read_bytes()
    assert len(summary["cameras"]["views"]) == 3 and (tmp_path / "api/photo/summary.json").exists()
    assert not [p for p in (tmp_path / "api").iterdir() if p.name != "photo"]  # no temporary folder left behind
    with pytest.raises(ValueError, match="--views"):
        nvs.render_to_folder(photos[0], tmp_path / "bad", views=0)
    with pytest.raises(ValueError, match="unknown options"):
        nvs.render_to_folder(photos[0], tmp_path / "bad", colour="red")
    with pytest.raises(nvs.InputError, match="no such file"):
        nvs.render_to_folder(tmp_path / "missing.jpg", tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
