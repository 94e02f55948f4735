"""Synthetic multi-view scenes, rendered on the CPU and written as nerfstudio folders with object masks and depth.

    python -m nvs.data.synthetic --out DIR --scenes N --views V --size S [--seed K] [--style classic|varied]
                                 [--workers W]

Styles: "classic" (the default, and what the shipped model was trained on): one textured object (sphere, box,
cylinder, torus, capsule or a pair of spheres) in front of a sky/ground environment, Lambertian shading without
shadows, cameras 1.9-2.5 units away at elevations -5..35°. "varied" (varied.py): one to three parts, concave, thin
and CSG-carved shapes, shadows, four kinds of environment, random camera distance, elevation and focal length.

Each scene folder holds transforms.json (nerfstudio: OpenGL camera-to-world, intrinsics, and per frame
`mask_path` and `depth_file_path`, with `depth_unit_scale_factor`), images/, masks/ and depth/ (masks_depth.py).
The object sits at the world origin inside [-0.7, 0.7]³; the world's y axis points up. The background depends
only on the viewing direction, so every view is consistent with one radiance field. Scene i is drawn from the
seed (seed, i) alone, so the output does not depend on how many worker processes render it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from common.cli import OneLineParser, print_error
from common.files import write_folder_atomic

from .masks_depth import write_depth, write_mask
from .raymarch import look_at_origin, render, supersampled, trace  # noqa: F401  (render, trace: public here too)
from .varied import VariedScene

SHAPES = ("sphere", "box", "cylinder", "torus", "capsule", "spheres")
STYLES = ("classic", "varied", "mixed")  # mixed: each scene classic or varied, by its own first draw
DEPTH_SCALE = 2e-4  # depth PNGs store z-depth in units of 2e-4: up to 13.1, beyond the farthest varied view (8.6)
TEXTURE_DIR = Path(__file__).with_name("textures")


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


class Scene:
    """One random object, its texture and lighting, and its environment."""

    def __init__(self, rng: np.random.Generator, photos: list[np.ndarray]):
        self.shape = SHAPES[rng.integers(len(SHAPES))]
        self.rotation = _rotation(rng)
        self.size = rng.uniform(0.45, 0.65)
        self.params = rng.uniform(0.4, 1.0, 3)
        self.texture = rng.integers(5)
        self.colors = rng.uniform(0.05, 0.95, (2, 3))
        self.frequency = rng.uniform(2.0, 6.0)
        self.photo = photos[rng.integers(len(photos))] if photos else None
        self.light = np.array([rng.uniform(-1, 1), 1.0, rng.uniform(-1, 1)])
        self.light /= np.linalg.norm(self.light)
        self.sky = rng.uniform(0.1, 1.0, (2, 3))  # horizon colour, zenith colour
        self.ground = rng.uniform(0.05, 0.8, 3)

    def sdf(self, p: np.ndarray) -> np.ndarray:
        """Signed distance in world units; p [..., 3] in the world frame."""
        q = p @ self.rotation / self.size  # object frame, unit scale
        a, b, c = self.params
        if self.shape == "sphere":
            d = np.linalg.norm(q, axis=-1) - 0.75 * a**0.2
        elif self.shape == "box":
            half = 0.35 + 0.35 * np.array([a, b, c])
            e = np.abs(q) - half
            d = np.linalg.norm(np.maximum(e, 0), axis=-1) + np.minimum(e.max(axis=-1), 0)
        elif self.shape == "cylinder":
            radius, height = 0.3 + 0.35 * a, 0.4 + 0.5 * b
            e = np.stack([np.linalg.norm(q[..., [0, 2]], axis=-1) - radius, np.abs(q[..., 1]) - height], -1)
            d = np.linalg.norm(np.maximum(e, 0), axis=-1) + np.minimum(e.max(axis=-1), 0)
        elif self.shape == "torus":
            major, minor = 0.55 + 0.2 * a, 0.15 + 0.15 * b
            d = (
                np.linalg.norm(np.stack([np.linalg.norm(q[..., [0, 2]], axis=-1) - major, q[..., 1]], -1), axis=-1)
                - minor
            )
        elif self.shape == "capsule":
            half, radius = 0.3 + 0.4 * a, 0.25 + 0.2 * b
            y = np.clip(q[..., 1], -half, half)
            d = np.linalg.norm(q - np.stack([np.zeros_like(y), y, np.zeros_like(y)], -1), axis=-1) - radius
        else:  # two spheres
            r1, r2 = 0.35 + 0.2 * a, 0.25 + 0.2 * b
            d = np.minimum(
                np.linalg.norm(q - np.array([0.35, 0.0, 0.0]), axis=-1) - r1,
                np.linalg.norm(q - np.array([-0.4, 0.2 * c, 0.0]), axis=-1) - r2,
            )
        return d * self.size

    def albedo(self, p: np.ndarray) -> np.ndarray:
        q = p @ self.rotation / self.size
        c0, c1 = self.colors
        if self.texture == 0:
            t = np.zeros(q.shape[:-1])
        elif self.texture == 1:  # 3-D checker
            t = np.floor(q * self.frequency).sum(-1) % 2
        elif self.texture == 2:  # stripes
            t = 0.5 + 0.5 * np.sin(q[..., 1] * self.frequency * math.pi)
        elif self.texture == 3:  # smooth blotches
            t = 0.5 + 0.25 * (
                np.sin(q[..., 0] * self.frequency * 2.1) + np.cos(q[..., 2] * self.frequency * 1.7 + q[..., 1])
            )
        elif self.photo is not None:  # a photo wrapped around by spherical projection
            u = (np.arctan2(q[..., 2], q[..., 0]) / (2 * math.pi) + 0.5) * (self.photo.shape[1] - 1)
            v = np.arcsin(np.clip(q[..., 1] / np.maximum(np.linalg.norm(q, axis=-1), 1e-6), -1, 1)) / math.pi + 0.5
            v = (1 - v) * (self.photo.shape[0] - 1)
            return self.photo[v.round().astype(int), u.round().astype(int)]
        else:
            t = np.zeros(q.shape[:-1])
        return c0 * (1 - t[..., None]) + c1 * t[..., None]

    def shade(self, p: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Surface colour [N, 3] at points p [N, 3]: Lambertian under one distant light plus ambient, no shadows."""
        return self.albedo(p) * (0.35 + 0.65 * np.clip(normal @ self.light, 0, 1))[:, None]

    def background(self, dirs: np.ndarray) -> np.ndarray:
        """Sky gradient above the horizon, a ground colour below, blended softly; depends on direction only."""
        up = dirs[..., 1:2]
        sky = self.sky[0] + (self.sky[1] - self.sky[0]) * np.clip(up, 0, 1)
        blend = 1 / (1 + np.exp(-up * 12))
        return sky * blend + self.ground * (1 - blend)


def camera(rng: np.random.Generator) -> np.ndarray:
    """OpenGL camera-to-world on a sphere around the origin, looking at it, world y up."""
    distance = rng.uniform(1.9, 2.5)
    azimuth, elevation = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-5, 35))
    return look_at_origin(distance, azimuth, elevation)


def load_photos() -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB"), np.float32) / 255 for p in sorted(TEXTURE_DIR.glob("*.png"))]


def write_scene(
    folder: Path,
    rng: np.random.Generator,
    views: int,
    size: int,
    photos: list[np.ndarray],
    style: str = "classic",
) -> None:
    """Render one scene into `folder` atomically (a temporary sibling renamed at the end): images, object masks
    and depth maps, all from the same rays, and transforms.json."""
    if style == "mixed":
        style = ("classic", "varied")[int(rng.integers(2))]
    if style == "classic":  # the draws keep their order, so classic scenes stay what they were
        scene, draw_camera = Scene(rng, photos), camera
        fov_deg = rng.uniform(35, 45)
    elif style == "varied":
        scene = VariedScene(rng)
        fov_deg, draw_camera = scene.fov_deg, scene.camera
    else:
        raise ValueError(f"style: expected one of {STYLES}, got {style!r}")
    focal = 0.5 * size / math.tan(math.radians(fov_deg) / 2)

    def fill(tmp: Path) -> None:
        for sub in ("images", "masks", "depth"):
            (tmp / sub).mkdir()
        frames = []
        for i in range(views):
            c2w = draw_camera(rng)
            out = supersampled(scene, c2w, focal, size)
            name = f"frame_{i:05d}.png"
            Image.fromarray((out["rgb"] * 255 + 0.5).astype(np.uint8)).save(tmp / "images" / name)
            write_mask(tmp / "masks" / name, out["mask"])
            write_depth(tmp / "depth" / name, out["depth"], DEPTH_SCALE)
            frames.append(
                {
                    "file_path": f"images/{name}",
                    "mask_path": f"masks/{name}",
                    "depth_file_path": f"depth/{name}",
                    "transform_matrix": c2w.tolist(),
                }
            )
        meta = {
            "camera_model": "PINHOLE",
            "fl_x": focal,
            "fl_y": focal,
            "cx": size / 2,
            "cy": size / 2,
            "w": size,
            "h": size,
            "depth_unit_scale_factor": DEPTH_SCALE,
            "frames": frames,
            "object": scene.shape,
            "style": style,
        }
        if style == "varied":
            meta["environment"] = scene.environment.kind
        (tmp / "transforms.json").write_text(json.dumps(meta, indent=1))

    write_folder_atomic(folder, fill)


_PHOTOS: list[np.ndarray] | None = None  # each worker process loads the photo textures once


def _write_one(index: int, root: Path, seed: int, views: int, size: int, style: str) -> int:
    global _PHOTOS
    if _PHOTOS is None:
        _PHOTOS = load_photos()
    write_scene(root / f"scene_{index:05d}", np.random.default_rng([seed, index]), views, size, _PHOTOS, style)
    return index


def write_scenes(
    root: str | Path,
    scenes: int,
    views: int,
    size: int,
    seed: int = 0,
    style: str = "classic",
    workers: int = 1,
) -> Iterator[int]:
    """Render scenes 0..scenes-1 into root/scene_NNNNN, `workers` processes at a time (1: in this process);
    yields each finished scene's index (in completion order) so callers can show progress. Scene i depends on
    (seed, i) only, so any number of workers writes the same files."""
    if style not in STYLES:
        raise ValueError(f"style: expected one of {STYLES}, got {style!r}")
    if workers < 1:
        raise ValueError(f"workers: expected at least 1, got {workers}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    job = partial(_write_one, root=root, seed=seed, views=views, size=size, style=style)
    if workers == 1 or scenes == 1:
        yield from map(job, range(scenes))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: the parent may hold torch's thread pools, which a forked child must not inherit. An
    # executor, not a Pool: a worker that dies (say, a script without the `if __name__ == "__main__"` guard that
    # spawn needs) fails the call instead of being restarted forever
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, scenes), mp_context=context) as executor:
        for future in as_completed([executor.submit(job, i) for i in range(scenes)]):
            yield future.result()


def main(argv=None) -> int:
    p = OneLineParser(name_errors=False, prog="python -m nvs.data.synthetic", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", default="classic", help=f"one of {', '.join(STYLES)} (default classic)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: one per CPU)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (it shows only on a terminal)")
    args = p.parse_args(argv)
    if args.scenes < 1 or args.views < 2 or args.size < 8:
        return print_error("--scenes >= 1, --views >= 2 and --size >= 8 are required")
    if args.style not in STYLES:
        return print_error(f"--style: expected one of {', '.join(STYLES)}, got {args.style!r}")
    if args.workers < 1:
        return print_error(f"--workers: expected at least 1, got {args.workers}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return print_error(f"--out: cannot create {args.out}: {error}")
    from tqdm import tqdm

    quiet = args.quiet or not sys.stderr.isatty()
    done = write_scenes(args.out, args.scenes, args.views, args.size, args.seed, args.style, args.workers)
    for _ in tqdm(done, total=args.scenes, desc="rendering scenes", unit="scene", file=sys.stderr, disable=quiet):
        pass
    print(f"wrote {args.scenes} {args.style} scenes x {args.views} views of {args.size}px to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
