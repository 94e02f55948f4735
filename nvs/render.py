"""Novel views, depth, an orbit video, a coloured mesh, a point cloud and a nerfstudio dataset from photos.

    python -m nvs.render photo.jpg [more.png ...] [--out renders] [--views 8] [--size 128] [--mesh ply] ...

Writes DIR/<stem>/ per photo: views/NNN.png, depth/NNN.png + depth.npy, orbit.gif|mp4, mesh.<ext>,
points.ply (--points), nerfstudio/ (transforms.json + images/) and summary.json. Each photo's folder appears
whole or not at all (written in a temporary folder, renamed at the end); a bad photo gets one line on stderr
and exit code 2 at the end, and the others are still rendered.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import cameras, export
from .baked import BakedField
from .images import load_rgb
from .model.nvist import NViST
from .weights import DEFAULT_WEIGHTS, load_model

PROG = "python -m nvs.render"
ORBIT_SECONDS = 4.0  # one loop of the orbit video


class InputError(Exception):
    """A photo that cannot be used; its message is the reason, printed after the photo's path."""


class OneLineParser(argparse.ArgumentParser):
    """Command-line errors as one line on stderr (exit code 2), without the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("images", nargs="+", type=Path, help="photos: JPEG, PNG, WebP, BMP, TIFF (any size)")
    p.add_argument("--out", type=Path, default=Path("renders"), help="output folder (default: renders)")
    p.add_argument("--checkpoint", type=Path, default=None, help="model .safetensors (default: the shipped model)")
    p.add_argument("--views", type=int, default=8, help="views on the orbit, view 0 at the input camera (default: 8)")
    p.add_argument("--elevation", type=float, default=0.0, help="orbit elevation in degrees (default: 0)")
    p.add_argument("--distance", type=float, default=None, help="orbit radius (default: the input camera's)")
    p.add_argument("--fov", type=float, default=None, help="views' field of view, degrees (default: the input's)")
    p.add_argument("--size", type=int, default=128, help="views are SIZE×SIZE pixels (default: 128)")
    p.add_argument("--video", choices=("gif", "mp4", "none"), default="gif", help="orbit video (default: gif)")
    p.add_argument("--mesh", choices=("ply", "obj", "glb", "none"), default="ply", help="mesh format (default: ply)")
    p.add_argument("--mc-resolution", type=int, default=128, help="marching cubes grid per axis (default: 128)")
    p.add_argument("--points", action="store_true", help="also write points.ply (depth back-projected)")
    p.add_argument("--background", default="white", help="colour behind transparent pixels (default: white)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda if available")
    p.add_argument("--chunk", type=int, default=16384, help="rays per render chunk (default: 16384)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    return p


def check_options(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, in one line, or None; parses --background into an RGB triple."""
    for name, low in (("views", 1), ("size", 8), ("mc_resolution", 8), ("chunk", 1)):
        if getattr(args, name) < low:
            return f"--{name.replace('_', '-')} must be at least {low}, got {getattr(args, name)}"
    if args.distance is not None and not args.distance > 0:
        return f"--distance must be positive, got {args.distance}"
    if args.fov is not None and not 0 < args.fov < 180:
        return f"--fov must be between 0 and 180 degrees, got {args.fov}"
    if args.video == "mp4" and not export.mp4_available():
        return "--video mp4 needs PyAV, which is not installed (pip install av); use --video gif"
    if args.device == "cuda" and not torch.cuda.is_available():
        return "--device cuda: no CUDA device is available here"
    if isinstance(args.background, str):
        from matplotlib.colors import to_rgb

        try:
            args.background = to_rgb(args.background)
        except ValueError:
            return f"--background: not a colour: {args.background!r} (a name such as white, or #rrggbb)"
    return None


def parse_args(argv=None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    problem = check_options(args)
    if problem:
        p.error(problem)
    return args


def read_photo(path: Path, background: tuple[float, float, float]) -> torch.Tensor:
    """[3, H, W] in 0..1, or InputError with a one-line reason."""
    if not path.exists():
        raise InputError("no such file")
    if path.is_dir():
        raise InputError("is a directory, not an image")
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)")
    try:
        return load_rgb(path, background)
    except (ValueError, OSError) as error:
        raise InputError(f"not a readable image ({error.__cause__ or error})") from error


def model_id(checkpoint: Path | None) -> dict:
    """What summary.json says about the model: its file and SHA-256, or that it is randomly initialised."""
    path = checkpoint or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.exists() else None)
    if path is None:
        return {"id": "random-init", "checkpoint": None, "sha256": None}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"id": f"{path.stem}@{digest[:12]}", "checkpoint": str(path), "sha256": digest}


def render_cameras(args: argparse.Namespace, model: NViST, distance: float, focal: float) -> tuple[torch.Tensor, dict]:
    """The orbit's OpenCV poses (relative to the input camera, around the object at (0, 0, distance)) and the
    views' intrinsics."""
    radius = distance if args.distance is None else args.distance
    poses = cameras.orbit_poses(args.views, radius, args.elevation)
    poses[:, 2, 3] += distance - radius  # orbit_poses circles (0, 0, radius); the object is at (0, 0, distance)
    fov = args.fov if args.fov is not None else math.degrees(2 * math.atan(model.config.image_height / (2 * focal)))
    f = args.size / (2 * math.tan(math.radians(fov) / 2))
    c = args.size / 2
    return poses, {"fx": f, "fy": f, "cx": c, "cy": c, "width": args.size, "height": args.size, "fov_deg": fov}


def render_photo(photo: torch.Tensor, model: NViST, args: argparse.Namespace, folder: Path) -> dict:
    """Everything for one photo, written under `folder`; returns the summary (without the input's name)."""
    timings = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    field = model.predict(photo)
    baked = BakedField(field, chunk=args.chunk)
    lap("predict")
    poses, intrinsics = render_cameras(args, model, field.distance, field.focal)
    size = {k: intrinsics[k] for k in ("fx", "fy", "cx", "cy", "width", "height")}
    out = baked.render(poses, **size)
    rgb, depth = out["rgb"].cpu().numpy(), out["depth"].cpu().numpy()
    lap("render")

    views, depth_images = export.to_uint8(rgb), export.colour_depth(depth, out["hit"].cpu().numpy())
    for sub in ("views", "depth", "nerfstudio/images"):
        (folder / sub).mkdir(parents=True)
    for i, (view, coloured) in enumerate(zip(views, depth_images, strict=True)):
        data = export.png_bytes(view)
        (folder / f"views/{i:03d}.png").write_bytes(data)
        (folder / f"nerfstudio/images/{i:03d}.png").write_bytes(data)
        (folder / f"depth/{i:03d}.png").write_bytes(export.png_bytes(coloured))
    np.save(folder / "depth.npy", depth.astype(np.float32))
    if args.video == "gif":
        (folder / "orbit.gif").write_bytes(export.gif_bytes(views, ORBIT_SECONDS))
    elif args.video == "mp4":
        export.write_mp4(folder / "orbit.mp4", views, ORBIT_SECONDS)
    lap("write_views")

    summary = {"mesh": None, "points": None, "warnings": []}
    if args.mesh != "none":
        summary["mesh"] = write_mesh(baked, args, folder / f"mesh.{args.mesh}", summary["warnings"])
        lap("mesh")

    world_from_camera = export.world_from_camera(field.distance)
    poses_world = world_from_camera @ poses.double().numpy()
    ply = None
    if args.points:
        points, colours = export.backproject(depth, rgb, poses_world, intrinsics)
        field_points = points @ export.WORLD_FROM_FIELD  # the inverse rotation (both frames centre the object)
        inside = (np.abs(field_points) < 0.98 * model.config.bound).all(axis=1)  # drop background at the box
        export.write_points(folder / "points.ply", points[inside], colours[inside])
        shutil.copyfile(folder / "points.ply", folder / "nerfstudio/points.ply")
        summary["points"] = {"file": "points.ply", "count": int(inside.sum())}
        ply = "points.ply"
        lap("points")
    transforms = export.nerfstudio_transforms(poses_world, intrinsics, ply)
    (folder / "nerfstudio/transforms.json").write_text(json.dumps(transforms, indent=2))

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


def write_mesh(baked: BakedField, args: argparse.Namespace, path: Path, warned: list[str]) -> dict | None:
    """Marching cubes over the density grid, vertex colours from the field seen head-on (along −normal)."""
    config = baked.config
    grid = baked.density_grid(args.mc_resolution).cpu().numpy()
    level, warning = export.iso_level(grid, config.field_resolution, config.bound)
    if warning:
        warned.append(warning)
    if level is None:
        return None
    vertices, triangles = export.marching_cubes(grid, level, config.bound)
    if len(triangles) == 0:
        warned.append(f"no surface at density {level:.3g}: no mesh written")
        return None
    normals = export.vertex_normals(vertices, triangles)
    device = baked.volume.device
    with torch.inference_mode():
        points, dirs = torch.from_numpy(vertices).to(device), torch.from_numpy(-normals).float().to(device)
        colours = torch.cat([baked.colour(p, d) for p, d in zip(points.split(65536), dirs.split(65536), strict=True)])
    world = vertices @ export.WORLD_FROM_FIELD.T
    export.write_mesh(path, world.astype(np.float32), triangles, colours.cpu().numpy())
    return {"file": path.name, "vertices": len(vertices), "triangles": len(triangles), "iso_density": level}


def commit(folder: Path, target: Path) -> None:
    """Put a finished temporary folder in place of `target` (replacing an older one)."""
    old = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        target.rename(old / "previous")
    folder.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def unique_stems(paths: list[Path]) -> list[str]:
    """Output folder names: the file's stem, with -2, -3 ... when two inputs share one."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = path.stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def write_folder(photo: torch.Tensor, model: NViST, args: argparse.Namespace, target: Path, head: dict) -> dict:
    """Render into a temporary folder beside `target`, then put it in place (replacing an older one): the folder
    appears whole or not at all. summary.json is `head` followed by render_photo's summary."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        folder.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the finished folder gets normal permissions
    except OSError as error:
        raise InputError(f"cannot write to {target.parent}: {error.strerror or error}") from error
    try:
        torch.manual_seed(args.seed)
        summary = (
            head | {"device": str(model.mean.device), "seed": args.seed} | render_photo(photo, model, args, folder)
        )
        (folder / "summary.json").write_text(json.dumps(summary, indent=2))
        commit(folder, target)
        return summary
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def process(path: Path, name: str, model: NViST, args: argparse.Namespace, model_info: dict) -> Path:
    """One photo -> args.out/name, whole or not at all."""
    photo = read_photo(path, args.background)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot write to --out {args.out}: {error.strerror or error}") from error
    summary = write_folder(photo, model, args, args.out / name, {"input": str(path), "model": model_info})
    for warning in summary["warnings"]:
        print(f"{PROG}: warning: {path}: {warning}", file=sys.stderr)
    return args.out / name


def load(args: argparse.Namespace) -> tuple[NViST, dict]:
    """The model on the chosen device, with its summary entry; load_model's warnings become one line each."""
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    torch.manual_seed(args.seed)  # a randomly initialised model is the same for the same seed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(args.checkpoint, device=device)
    for warning in caught:
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    info = model_id(args.checkpoint) | {"config": asdict(model.config)}
    return model, info


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def render_to_folder(photo, folder: str | Path, model: NViST | None = None, **options) -> dict:
    """The CLI's outputs for one photo, from Python. `photo` is a path (checked like the CLI's inputs), PIL image
    or [3, H, W] tensor; `folder` appears whole or not at all (an older one is replaced); `options` are the CLI's
    long options with underscores (views=8, elevation=0.0, video="mp4", mesh="glb", points=True, ...); without
    `model`, the one --checkpoint names (default: the shipped model) is loaded. Returns summary.json's content.
    Bad options raise ValueError; an unusable photo raises InputError."""
    args = build_parser().parse_args(["photo"])
    unknown = set(options) - (set(vars(args)) - {"images", "out"})
    if unknown:
        raise ValueError(f"render_to_folder: unknown options {sorted(unknown)}")
    vars(args).update(options)
    problem = check_options(args)
    if problem:
        raise ValueError(problem)
    if model is None:
        model, info = load(args)
    else:
        info = {"id": "given", "checkpoint": None, "sha256": None, "config": asdict(model.config)}
    if not isinstance(photo, torch.Tensor):
        photo = (
            read_photo(Path(photo), args.background)
            if isinstance(photo, (str, Path))
            else load_rgb(photo, args.background)
        )
    return write_folder(photo, model, args, Path(folder), {"input": None, "model": info})


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        model, info = load(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    failed = 0
    with Progress(console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("rendering", total=len(args.images))
        for path, name in zip(args.images, unique_stems(args.images), strict=True):
            progress.update(task, description=f"rendering {path.name}")
            try:
                target = process(path, name, model, args, info)
                print(f"{path} -> {target}/")
            except InputError as error:
                failed += 1
                print(f"{PROG}: error: {path}: {error}", file=sys.stderr)
            except Exception as error:  # one bad photo must not stop the others
                failed += 1
                print(f"{PROG}: error: {path}: {type(error).__name__}: {error}", file=sys.stderr)
            progress.advance(task)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
