"""What `python -m nvs.render` writes for one photo, and `render_to_folder`, its Python entry point.

Per photo: views/NNN.png, depth/NNN.png + depth.npy, orbit.gif|mp4, mesh.<ext>, points.ply (--points),
nerfstudio/ (transforms.json + images/) and summary.json, written in a temporary folder beside the target and
renamed at the end, so the folder appears whole or not at all. A model that renders NaN or Inf for a photo
(finite but huge weights, from a diverged training run) gets ood.NonFiniteRender and nothing is written; every
JSON file is strict JSON (a score that is not finite is null). This module imports torch and the model; the
command line (nvs/render.py) imports it only after its arguments are parsed.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from common.files import current_umask
from common.images import open_image

from . import cameras, ood, writers
from .baked import BakedField
from .errors import InputError
from .images import load_rgb
from .model.nvist import NViST
from .options import ORBIT_SECONDS, RenderOptions
from .weights import DEFAULT_WEIGHTS, load_model

# A photo is decoded with at least this many pixels a side (JPEGs at a reduced DCT scale, when that keeps it): far
# more than any model input, so the antialiased resize to it sees the same image, but a 200-megapixel JPEG
# decodes in a fraction of the time and memory, and Pillow's decompression-bomb limit does not refuse it.
PHOTO_MIN_SIDE = 1024


def read_photo(path: Path, background: tuple[float, float, float]) -> torch.Tensor:
    """[3, H, W] in 0..1 (a large JPEG decoded at a reduced scale, see PHOTO_MIN_SIDE), or InputError with a
    one-line reason."""
    if not path.exists():
        raise InputError("no such file")
    if path.is_dir():
        raise InputError("is a directory, not an image")
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)")
    try:
        return load_rgb(open_image(path, at_least=PHOTO_MIN_SIDE), background)
    except (ValueError, OSError) as error:
        raise InputError(f"not a readable image ({error.__cause__ or error})") from error


def model_id(checkpoint: Path | None) -> dict:
    """What summary.json says about the model: its file and SHA-256, or that it is randomly initialised."""
    path = checkpoint or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.exists() else None)
    if path is None:
        return {"id": "random-init", "checkpoint": None, "sha256": None}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"id": f"{path.stem}@{digest[:12]}", "checkpoint": str(path), "sha256": digest}


def render_cameras(options: RenderOptions, model: NViST, distance: float, focal: float) -> tuple[torch.Tensor, dict]:
    """The orbit's OpenCV poses (relative to the input camera, around the object at (0, 0, distance)) and the
    views' intrinsics."""
    radius = distance if options.distance is None else options.distance
    poses = cameras.orbit_poses(options.views, radius, options.elevation)
    poses[:, 2, 3] += distance - radius  # orbit_poses circles (0, 0, radius); the object is at (0, 0, distance)
    fov = (
        options.fov if options.fov is not None else math.degrees(2 * math.atan(model.config.image_height / (2 * focal)))
    )
    f = options.size / (2 * math.tan(math.radians(fov) / 2))
    c = options.size / 2
    return poses, {"fx": f, "fy": f, "cx": c, "cy": c, "width": options.size, "height": options.size, "fov_deg": fov}


def render_photo(photo: torch.Tensor, model: NViST, options: RenderOptions, folder: Path) -> dict:
    """Everything for one photo, written under `folder`; returns the summary (without the input's name)."""
    timings = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    image, scale = model.prepare(photo)  # read -> prepare -> predict -> render -> write, each once
    field = model.predict_prepared(image, scale=scale)
    baked = BakedField(field, chunk=options.chunk)
    familiar = ood.input_view_scores(baked, image)
    lap("predict")
    poses, intrinsics = render_cameras(options, model, field.distance, field.focal)
    size = {k: intrinsics[k] for k in ("fx", "fy", "cx", "cy", "width", "height")}
    out = baked.render(poses, **size)
    ood.check_finite("colour or depth", out["rgb"], out["depth"], out["opacity"])
    rgb, depth, opacity = (out[key].cpu().numpy() for key in ("rgb", "depth", "opacity"))
    lap("render")

    on_object = writers.object_pixels(opacity)
    views, depth_images = writers.to_uint8(rgb), writers.colour_depth(depth, on_object)
    for sub in ("views", "depth", "nerfstudio/images"):
        (folder / sub).mkdir(parents=True)
    for i, (view, coloured) in enumerate(zip(views, depth_images, strict=True)):
        data = writers.png_bytes(view)
        (folder / f"views/{i:03d}.png").write_bytes(data)
        (folder / f"nerfstudio/images/{i:03d}.png").write_bytes(data)
        (folder / f"depth/{i:03d}.png").write_bytes(writers.png_bytes(coloured))
    np.save(folder / "depth.npy", depth.astype(np.float32))
    np.save(folder / "opacity.npy", opacity.astype(np.float32))
    if options.video == "gif":
        (folder / "orbit.gif").write_bytes(writers.gif_bytes(views, ORBIT_SECONDS))
    elif options.video == "mp4":
        writers.write_mp4(folder / "orbit.mp4", views, ORBIT_SECONDS)
    lap("write_views")

    summary = {"mesh": None, "points": None, "input_view": familiar, "warnings": []}
    far_out = ood.notice(familiar, model.config.training_data)
    if far_out:
        summary["warnings"].append(far_out)
    if options.mesh != "none":
        summary["mesh"] = write_mesh(baked, options, folder / f"mesh.{options.mesh}", summary["warnings"])
        lap("mesh")

    world_from_camera = writers.world_from_camera(field.distance)
    poses_world = world_from_camera @ poses.double().numpy()
    ply = None
    if options.points:
        points, colours = writers.backproject(depth, rgb, poses_world, intrinsics)
        keep = on_object.reshape(-1)  # object pixels only: where the field is faint, depth says little
        writers.write_points(folder / "points.ply", points[keep], colours[keep])
        shutil.copyfile(folder / "points.ply", folder / "nerfstudio/points.ply")
        summary["points"] = {"file": "points.ply", "count": int(keep.sum())}
        ply = "points.ply"
        lap("points")
    transforms = writers.nerfstudio_transforms(poses_world, intrinsics, ply)
    (folder / "nerfstudio/transforms.json").write_text(strict_json(transforms))

    summary["cameras"] = {
        "convention": "OpenCV camera-to-world (x right, y down, z forward) relative to the input camera; the object "
        "is at (0, 0, input_distance)",
        "input_focal_px": field.focal,
        "input_size": [model.config.image_height, model.config.image_width],
        "input_distance": field.distance,
        "intrinsics": intrinsics,
        "views": [{"file": f"views/{i:03d}.png", "c2w": pose.tolist()} for i, pose in enumerate(poses)],
        "world_from_camera": world_from_camera.tolist(),
    }
    lap("write_rest")
    summary["timings_s"] = {**timings, "total": round(sum(timings.values()), 4)}
    return summary


def write_mesh(baked: BakedField, options: RenderOptions, path: Path, warned: list[str]) -> dict | None:
    """Marching cubes over the density grid, kept to the object's parts (writers.object_parts, within one field
    cell of the box's faces dropped), vertex colours from the field seen head-on (along −normal)."""
    config = baked.config
    grid = baked.density_grid(options.mc_resolution).cpu().numpy()
    level, warning = writers.iso_level(grid, config.field_resolution, config.bound)
    if warning:
        warned.append(warning)
    if level is None:
        return None
    vertices, triangles = writers.marching_cubes(grid, level, config.bound)
    cell = 2.0 * config.bound / config.field_resolution
    vertices, triangles = writers.object_parts(vertices, triangles, config.bound, margin=cell)
    if len(triangles) == 0:
        warned.append(f"no surface at density {level:.3g} away from the box's faces: no mesh written")
        return None
    normals = writers.vertex_normals(vertices, triangles)
    device = baked.volume.device
    with torch.inference_mode():
        points, dirs = torch.from_numpy(vertices).to(device), torch.from_numpy(-normals).float().to(device)
        colours = torch.cat([baked.colour(p, d) for p, d in zip(points.split(65536), dirs.split(65536), strict=True)])
    world = vertices @ writers.WORLD_FROM_FIELD.T
    writers.write_mesh(path, world.astype(np.float32), triangles, colours.cpu().numpy())
    return {"file": path.name, "vertices": len(vertices), "triangles": len(triangles), "iso_density": level}


def check_target(target: Path) -> None:
    """An older output folder may be replaced; anything else in its place (a file, a link to a file) is the
    user's and is left alone."""
    if (target.exists() or target.is_symlink()) and not target.is_dir():
        raise InputError(f"{target} exists and is not a folder: not replaced (move or rename it)")


def commit(folder: Path, target: Path) -> None:
    """Put a finished temporary folder in place of `target` (replacing an older output folder, never a file)."""
    check_target(target)
    old = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        target.rename(old / "previous")
    folder.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def finite_or_null(value):
    """`value` (JSON-like: dicts, lists, numbers) with every float that is not finite replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(finite_or_null(item) for item in value)
    return value


def strict_json(value) -> str:
    """`value` as strict JSON (indented): no NaN or Infinity, which most JSON readers refuse."""
    return json.dumps(finite_or_null(value), indent=2, allow_nan=False)


def write_folder(photo: torch.Tensor, model: NViST, options: RenderOptions, target: Path, head: dict) -> dict:
    """Render into a temporary folder beside `target`, then put it in place (replacing an older one): the folder
    appears whole or not at all. summary.json is `head` followed by render_photo's summary, as strict JSON (a
    number that is not finite is null). A model that renders NaN or Inf raises ood.NonFiniteRender and leaves
    nothing behind."""
    check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        folder.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; the finished folder gets normal permissions
    except OSError as error:
        raise InputError(f"cannot write to {target.parent}: {error.strerror or error}") from error
    try:
        torch.manual_seed(options.seed)
        rendered = render_photo(photo, model, options, folder)
        summary = finite_or_null(head | {"device": str(model.mean.device), "seed": options.seed} | rendered)
        (folder / "summary.json").write_text(strict_json(summary))
        commit(folder, target)
        return summary
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def load(options: RenderOptions, warn=print) -> tuple[NViST, dict]:
    """The model on the chosen device, with its summary entry; load_model's warnings go to `warn`, one each."""
    device = "cuda" if options.device == "cuda" or (options.device == "auto" and torch.cuda.is_available()) else "cpu"
    torch.manual_seed(options.seed)  # a randomly initialised model is the same for the same seed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(options.checkpoint, device=device)
    for warning in caught:
        warn(str(warning.message))
    info = model_id(None if options.checkpoint is None else Path(options.checkpoint)) | {"config": asdict(model.config)}
    return model, info


def render_to_folder(
    photo, folder: str | Path, model: NViST | None = None, options: RenderOptions | None = None, **overrides
) -> dict:
    """The CLI's outputs for one photo, from Python. `photo` is a path (checked like the CLI's inputs), PIL image
    or [3, H, W] tensor; `folder` appears whole or not at all (an older one is replaced); `options` (default:
    RenderOptions()) with `overrides`, the CLI's long options with underscores (views=8, elevation=0.0,
    video="mp4", mesh="glb", points=True, ...); without `model`, the one `checkpoint` names (default: the shipped
    model) is loaded. Returns summary.json's content. Bad options raise ValueError; an unusable photo raises
    InputError; a model that renders NaN or Inf for it (a diverged training run's) raises ood.NonFiniteRender,
    a ValueError."""
    unknown = set(overrides) - RenderOptions.names()
    if unknown:
        raise ValueError(f"render_to_folder: unknown options {sorted(unknown)}")
    options = replace(options or RenderOptions(), **overrides).checked()
    if model is None:
        model, info = load(options, warn=lambda message: warnings.warn(message, stacklevel=3))
    else:
        info = {"id": "given", "checkpoint": None, "sha256": None, "config": asdict(model.config)}
    if not isinstance(photo, torch.Tensor):
        photo = (
            read_photo(Path(photo), options.background)
            if isinstance(photo, (str, Path))
            else load_rgb(photo, options.background)
        )
    return write_folder(photo, model, options, Path(folder), {"input": None, "model": info})
