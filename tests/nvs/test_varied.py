"""The synthetic generator's styles: the "varied" family's variety, bounds and shadows, classic scenes unchanged,
and output that does not depend on the number of worker processes."""

import hashlib
import json
import math

import numpy as np
import pytest

from nvs.data import synthetic, varied
from nvs.data.raymarch import trace


def test_varied_scenes_vary_in_shape_environment_and_camera():
    scenes = [varied.VariedScene(np.random.default_rng([0, i])) for i in range(60)]
    kinds = {part.kind for scene in scenes for part in scene.parts}
    assert kinds >= {"torus", "cup", "rod", "plate", "ring", "box", "sphere"}  # concave and thin ones among them
    assert {part.csg for scene in scenes for part in scene.parts} == {"none", "difference", "intersection"}
    assert {len(scene.parts) for scene in scenes} == {1, 2, 3}
    assert {scene.environment.kind for scene in scenes} == set(varied.ENVIRONMENTS)
    fovs = [scene.fov_deg for scene in scenes]
    assert min(fovs) < 32 and max(fovs) > 52
    cameras = [scenes[0].camera(np.random.default_rng(i)) for i in range(40)]
    distances = [np.linalg.norm(c[:3, 3]) for c in cameras]
    elevations = [math.degrees(math.asin(c[1, 3] / d)) for c, d in zip(cameras, distances, strict=True)]
    assert max(distances) / min(distances) > 1.25 and min(elevations) < 0 and max(elevations) > 45


def test_varied_objects_fit_in_the_ball_of_radius_0_7():
    """Every point inside any scene's surface (on a 48³ grid over [-1, 1]³) lies within 0.7 of the origin, and
    every scene has some inside."""
    axis = np.linspace(-1, 1, 48)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    for i in range(12):
        scene = varied.VariedScene(np.random.default_rng([1, i]))
        inside = grid[scene.sdf(grid) < 0]
        assert len(inside) > 0, scene.shape
        assert np.linalg.norm(inside, axis=-1).max() <= varied.FIT_RADIUS + 1e-6, scene.shape


def test_cup_is_concave_and_open_at_the_top():
    """A point in the cup's hollow is outside the solid; one in its wall or base is inside."""
    q = np.array([[0.0, 0.3, 0.0], [0.0, -0.45, 0.0], [0.52, 0.0, 0.0], [0.0, 0.9, 0.0]])
    d = varied.primitive_sdf("cup", q, 0.5, 0.5)  # radius 0.575, half height 0.525, wall and base 0.1 thick
    assert d[0] > 0 and d[1] < 0 and d[2] < 0 and d[3] > 0


def _scene_with_a_plate_over_a_ball(plate: bool):
    scene = varied.VariedScene(np.random.default_rng(0))
    ball = varied.Part(np.random.default_rng(1), np.zeros(3), 0.3)
    ball.kind, ball.csg, ball.rotation, ball.a, ball.pattern = "sphere", "none", np.eye(3), 0.0, "plain"
    cover = varied.Part(np.random.default_rng(2), np.array([0.0, 0.5, 0.0]), 0.5)
    cover.kind, cover.csg, cover.rotation, cover.pattern = "plate", "none", np.eye(3), "plain"
    scene.parts = [ball, cover] if plate else [ball]
    scene.light, scene.ambient, scene.light_colour = np.array([0.0, 1.0, 0.0]), 0.3, np.ones(3)
    return scene, ball


def test_a_part_between_the_light_and_a_point_casts_a_shadow():
    """The top of a ball lit from straight above gets ambient light only under a plate, full light without it."""
    top, normal = np.array([[0.0, 0.21, 0.0]]), np.array([[0.0, 1.0, 0.0]])  # ball radius 0.7 * 0.3
    shaded, ball = _scene_with_a_plate_over_a_ball(plate=True)
    assert np.allclose(shaded.shade(top, normal), ball.colors[0] * 0.3)
    lit, ball = _scene_with_a_plate_over_a_ball(plate=False)
    assert np.allclose(lit.shade(top, normal), ball.colors[0] * 1.0)


def test_every_environment_depends_on_the_direction_only_and_stays_in_range():
    dirs = np.random.default_rng(0).standard_normal((500, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    for kind in varied.ENVIRONMENTS:
        environment = varied.Environment(np.random.default_rng(3))
        environment.kind = kind
        colours = environment(dirs)
        assert colours.shape == (500, 3) and colours.min() >= 0 and colours.max() <= 1
        assert np.array_equal(colours, environment(dirs))


def test_varied_views_show_the_object_through_the_same_rays_as_its_mask():
    scene = varied.VariedScene(np.random.default_rng([0, 4]))
    out = trace(scene, scene.camera(np.random.default_rng(0)), 40.0, 32)
    assert 0.02 < out["hit"].mean() < 0.9
    assert (out["depth"][out["hit"]] > 0).all() and (out["depth"][~out["hit"]] == 0).all()


def test_classic_scenes_are_unchanged():
    """Pixels of scene 0, view 0 (seed 0, 32²) as the generator before styles, masks and depth wrote them."""
    rng = np.random.default_rng([0, 0])
    scene = synthetic.Scene(rng, synthetic.load_photos())
    focal = 0.5 * 32 / math.tan(math.radians(rng.uniform(35, 45)) / 2)
    rgb = synthetic.supersampled(scene, synthetic.camera(rng), focal, 32)["rgb"]
    pixels = (rgb * 255 + 0.5).astype(np.uint8)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == CLASSIC_SCENE0_VIEW0


CLASSIC_SCENE0_VIEW0 = "650e01a25025bb36c0ee906716e8c5361f27b80c4acbde64e3269bb79170b9e0"


def test_output_does_not_depend_on_the_number_of_workers(tmp_path):
    for workers in (1, 2):
        list(synthetic.write_scenes(tmp_path / str(workers), 3, 2, 16, seed=7, style="varied", workers=workers))
    files = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*") if p.is_file())
    assert len(files) == 3 * (1 + 3 * 2)  # transforms.json, and an image, a mask and a depth map per view
    for name in files:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    meta = json.loads((tmp_path / "1/scene_00000/transforms.json").read_text())
    assert meta["style"] == "varied" and meta["depth_unit_scale_factor"] == synthetic.DEPTH_SCALE


@pytest.mark.parametrize("args,pattern", [(["--style", "fancy"], "--style"), (["--workers", "0"], "--workers")])
def test_generator_refuses_bad_style_and_workers(tmp_path, capsys, args, pattern):
    assert synthetic.main(["--out", str(tmp_path), *args]) == 2
    assert pattern in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_datamodule_generates_a_style_and_records_settings_without_the_worker_count(tmp_path):
    from nvs.data.datamodule import NViSTData

    spec = {"scenes": 3, "views": 2, "size": 8, "seed": 4, "style": "varied", "workers": 2}
    data = NViSTData(
        root=str(tmp_path / "v"),
        generate=spec,
        holdout_every=3,
        input_height=8,
        input_width=8,
        target_height=8,
        target_width=8,
    )
    data.prepare_data()
    assert json.loads((tmp_path / "v/.complete").read_text()) == {
        "scenes": 3,
        "views": 2,
        "size": 8,
        "seed": 4,
        "style": "varied",
    }
    NViSTData(root=str(tmp_path / "v"), generate={**spec, "workers": 1}).prepare_data()  # same scenes: reused
    data.setup()
    item = data.val_set[0]  # held-out scenes carry the masks and depth the object metrics need
    assert item["masks"].shape == item["depths"].shape == (1, 8, 8) and item["input_mask"].shape == (8, 8)
    classic = {"scenes": 1, "views": 2, "size": 8}
    NViSTData(root=str(tmp_path / "c"), generate=classic).prepare_data()
    NViSTData(root=str(tmp_path / "c"), generate={**classic, "style": "classic"}).prepare_data()  # the default
    with pytest.raises(ValueError, match="not the requested"):
        NViSTData(root=str(tmp_path / "c"), generate={**classic, "style": "varied"}).prepare_data()


def test_mixed_style_draws_both_families_per_scene(tmp_path):
    list(synthetic.write_scenes(tmp_path, 12, 1, 8, seed=3, style="mixed", workers=1))
    styles = [json.loads(p.read_text())["style"] for p in sorted(tmp_path.glob("scene_*/transforms.json"))]
    assert set(styles) == {"classic", "varied"}  # 12 fair draws: both with probability 1 - 2^-11
    assert all(
        ("environment" in json.loads(p.read_text())) == (s == "varied")
        for p, s in zip(sorted(tmp_path.glob("scene_*/transforms.json")), styles, strict=True)
    )


def test_depth_png_range_reaches_the_farthest_varied_view():
    """A 16-bit depth PNG at DEPTH_SCALE holds the farthest object point a varied scene can show. The bound: radius
    0.7 filling half the half-image at the narrowest field of view (25°), seen from 1.25× that distance, plus the
    radius behind the centre; 2000 drawn scenes stay within it (at 1e-4 the PNG held 6.55 and generation failed)."""
    radius, narrowest_fov, least_fill, farthest = 0.7, 25.0, 0.5, 1.25
    bound = farthest * radius / (least_fill * math.tan(math.radians(narrowest_fov) / 2)) + radius
    reach = 0.0
    for index in range(2000):
        rng = np.random.default_rng([0, index])
        scene = varied.VariedScene(rng)
        for _ in range(8):
            reach = max(reach, float(np.linalg.norm(scene.camera(rng)[:3, 3])) + scene.radius)
    assert 6.6 < reach <= bound < 65535 * synthetic.DEPTH_SCALE
