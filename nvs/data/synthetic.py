"""Synthetic multi-view scenes, rendered on the CPU: a textured object (sphere, box, cylinder, torus, capsule
or a pair of spheres) in front of an environment, seen from cameras around it; written as nerfstudio folders.

    python -m nvs.data.synthetic --out DIR --scenes N --views V --size S [--seed K]

Each scene folder holds transforms.json (nerfstudio: OpenGL camera-to-world, intrinsics) and images/.
The object sits at the world origin inside [-0.7, 0.7]³; the world's y axis points up. Shading is Lambertian
and the background depends only on the viewing direction, so every view is consistent with one radiance field.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from common.cli import OneLineParser, print_error

SHAPES = ("sphere", "box", "cylinder", "torus", "capsule", "spheres")
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

    def background(self, dirs: np.ndarray) -> np.ndarray:
        """Sky gradient above the horizon, a ground colour below, blended softly; depends on direction only."""
        up = dirs[..., 1:2]
        sky = self.sky[0] + (self.sky[1] - self.sky[0]) * np.clip(up, 0, 1)
        blend = 1 / (1 + np.exp(-up * 12))
        return sky * blend + self.ground * (1 - blend)


def render(scene: Scene, c2w_gl: np.ndarray, focal: float, size: int) -> np.ndarray:
    """Sphere tracing of the scene's SDF from an OpenGL camera; returns [size, size, 3] in 0..1."""
    v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    cam = np.stack([(u - size / 2) / focal, -(v - size / 2) / focal, -np.ones_like(u)], -1)
    dirs = cam @ c2w_gl[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origin = c2w_gl[:3, 3]
    flat_dirs = dirs.reshape(-1, 3)
    t = np.zeros(len(flat_dirs))
    hit = np.zeros(len(flat_dirs), bool)
    active = np.arange(len(flat_dirs))  # rays still marching: not on the surface, not past t = 10
    for _ in range(96):
        d = scene.sdf(origin + t[active, None] * flat_dirs[active])
        landed = d < 1e-3
        hit[active[landed]] = True
        t[active[~landed]] += d[~landed]
        active = active[~landed & (t[active] < 10)]
        if not len(active):
            break
    hit = (hit & (t < 10)).reshape(dirs.shape[:-1])
    t = t.reshape(dirs.shape[:-1])
    image = scene.background(dirs)
    if hit.any():
        p = origin + t[hit][:, None] * dirs[hit]
        eps = 1e-3
        normal = np.stack([scene.sdf(p + e) - scene.sdf(p - e) for e in np.eye(3) * eps], -1)
        normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
        shade = 0.35 + 0.65 * np.clip(normal @ scene.light, 0, 1)
        image[hit] = scene.albedo(p) * shade[:, None]
    return np.clip(image, 0, 1)


def _supersampled(scene: Scene, c2w: np.ndarray, focal: float, size: int, factor: int = 2) -> np.ndarray:
    big = render(scene, c2w, focal * factor, size * factor)
    return big.reshape(size, factor, size, factor, 3).mean(axis=(1, 3))


def camera(rng: np.random.Generator) -> np.ndarray:
    """OpenGL camera-to-world on a sphere around the origin, looking at it, world y up."""
    distance = rng.uniform(1.9, 2.5)
    azimuth, elevation = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-5, 35))
    eye = distance * np.array(
        [math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)]
    )
    back = eye / np.linalg.norm(eye)  # OpenGL cameras look down -z
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, eye
    return c2w


def load_photos() -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB"), np.float32) / 255 for p in sorted(TEXTURE_DIR.glob("*.png"))]


def write_scene(folder: Path, rng: np.random.Generator, views: int, size: int, photos: list[np.ndarray]) -> None:
    """Render one scene into `folder` atomically (a temporary sibling renamed at the end)."""
    scene = Scene(rng, photos)
    fov = math.radians(rng.uniform(35, 45))
    focal = 0.5 * size / math.tan(fov / 2)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        (tmp / "images").mkdir()
        frames = []
        for i in range(views):
            c2w = camera(rng)
            image = _supersampled(scene, c2w, focal, size)
            name = f"images/frame_{i:05d}.png"
            Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(tmp / name)
            frames.append({"file_path": name, "transform_matrix": c2w.tolist()})
        meta = {
            "camera_model": "PINHOLE",
            "fl_x": focal,
            "fl_y": focal,
            "cx": size / 2,
            "cy": size / 2,
            "w": size,
            "h": size,
            "frames": frames,
            "object": scene.shape,
        }
        (tmp / "transforms.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv=None) -> int:
    p = OneLineParser(name_errors=False, prog="python -m nvs.data.synthetic", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (it shows only on a terminal)")
    args = p.parse_args(argv)
    if args.scenes < 1 or args.views < 2 or args.size < 8:
        return print_error("--scenes >= 1, --views >= 2 and --size >= 8 are required")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return print_error(f"--out: cannot create {args.out}: {error}")
    photos = load_photos()
    from tqdm import tqdm

    quiet = args.quiet or not sys.stderr.isatty()
    for i in tqdm(range(args.scenes), desc="rendering scenes", unit="scene", file=sys.stderr, disable=quiet):
        write_scene(args.out / f"scene_{i:05d}", np.random.default_rng([args.seed, i]), args.views, args.size, photos)
    print(f"wrote {args.scenes} scenes x {args.views} views of {args.size}px to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
