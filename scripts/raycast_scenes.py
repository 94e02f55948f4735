"""Multi-view test scenes from a renderer that shares no code with nvs.data: open3d's ray caster on triangle meshes.

    python scripts/raycast_scenes.py --out data/raycast_100 --scenes 40 --views 8 --size 32 --seed 100

A family of scenes no NViST model here trains on, for checking that what a model learned transfers beyond our
generator's look (`scripts/compare_nvs_models.py --sets raycast:100`). Each scene: one to three of open3d's
primitive meshes (box, sphere, cylinder, cone, torus, icosahedron, octahedron, tetrahedron), each in one flat
colour, rotated, placed and scaled so that the group fits the ball of radius 0.7 at the origin, standing on a grey
ground plane under a sky that fades between two colours; Lambert shading from one sun with cast shadows, plus
ambient light. Cameras look at the origin from distance 1.9-2.6, elevation 5-45 degrees and any azimuth, through
a 35-50 degree field of view; view 0 is the input view. Rays come from open3d's pinhole model (OpenCV axes,
pixel centres at +0.5), rendered at 2x2 samples per pixel and averaged. Written as nerfstudio folders (OpenGL
camera-to-world in transforms.json) with object masks and z-depth, as `nvs.data.synthetic` writes them.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from common.files import write_folder_atomic

DEPTH_SCALE = 2e-4  # 16-bit depth PNGs in units of 2e-4: up to 13.1
SUPERSAMPLE = 2
FIT_RADIUS = 0.7
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])  # flips the camera's y and z axes


def primitive(kind: str, rng: np.random.Generator):
    """A legacy open3d mesh of `kind`, centred on the origin, of roughly unit size, with random proportions."""
    import open3d as o3d

    make = o3d.geometry.TriangleMesh
    if kind == "box":
        w, h, d = rng.uniform(0.4, 1.0, 3)
        mesh = make.create_box(w, h, d).translate((-w / 2, -h / 2, -d / 2))
    elif kind == "sphere":
        mesh = make.create_sphere(rng.uniform(0.3, 0.5), resolution=24)
    elif kind == "cylinder":
        mesh = make.create_cylinder(rng.uniform(0.15, 0.4), rng.uniform(0.4, 1.0), resolution=24)
    elif kind == "cone":
        height = rng.uniform(0.5, 1.0)
        mesh = make.create_cone(rng.uniform(0.2, 0.45), height, resolution=24).translate((0, 0, -height / 2))
    elif kind == "torus":
        mesh = make.create_torus(rng.uniform(0.3, 0.45), rng.uniform(0.08, 0.18), 30, 16)
    elif kind == "icosahedron":
        mesh = make.create_icosahedron(rng.uniform(0.3, 0.5))
    elif kind == "octahedron":
        mesh = make.create_octahedron(rng.uniform(0.3, 0.5))
    elif kind == "tetrahedron":
        mesh = make.create_tetrahedron(rng.uniform(0.35, 0.55))
    else:
        raise ValueError(f"kind: unknown primitive {kind!r}")
    return mesh


KINDS = ("box", "sphere", "cylinder", "cone", "torus", "icosahedron", "octahedron", "tetrahedron")


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def hsv_colour(rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation), rng.uniform(*value)))


def direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector at `azimuth` about the world's y axis (0 = +z) and `elevation` above the horizon (radians)."""
    return np.array(
        [math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)]
    )


def random_scene(rng: np.random.Generator) -> RaycastScene:
    """One to three random primitives, fitted together into the ball of radius 0.7, over a tinted ground."""
    meshes = []
    for _ in range(int(rng.integers(1, 4))):
        mesh = primitive(KINDS[int(rng.integers(len(KINDS)))], rng)
        mesh.rotate(random_rotation(rng), center=(0, 0, 0))
        mesh.translate(rng.uniform(-0.45, 0.45, 3))
        meshes.append(mesh)
    points = np.concatenate([np.asarray(m.vertices) for m in meshes])
    centre = (points.min(0) + points.max(0)) / 2
    scale = FIT_RADIUS / np.linalg.norm(points - centre, axis=1).max()
    for mesh in meshes:
        mesh.translate(-centre).scale(scale, center=(0, 0, 0))
    colours = np.stack([hsv_colour(rng, (0.3, 0.9), (0.5, 1.0)) for _ in meshes])
    ground = np.full(3, 0.55) * rng.uniform(0.8, 1.2, 3)  # a slightly tinted grey
    sky = hsv_colour(rng, (0.1, 0.5), (0.7, 1.0)), hsv_colour(rng, (0.1, 0.6), (0.3, 0.8))
    sun = direction(rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(30, 70)))
    return RaycastScene(meshes, colours, ground, sky, sun, ambient=rng.uniform(0.25, 0.4))


class RaycastScene:
    """Meshes in flat colours (an [objects, 3] array) standing on a ground plane of colour `ground` (None: no
    ground), under a sky fading from sky[1] at the horizon to sky[0] overhead, lit by a sun from direction `sun`
    with cast shadows plus `ambient` light; `render` casts a camera's rays through open3d."""

    def __init__(self, meshes, colours, ground, sky, sun, ambient: float):
        import open3d as o3d

        self.raycaster = o3d.t.geometry.RaycastingScene()
        for mesh in meshes:
            self.raycaster.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
        self.colours, self.ground_id = np.asarray(colours, dtype=np.float64), -1
        if ground is not None:
            floor = min(np.asarray(m.vertices)[:, 1].min() for m in meshes)
            plane = o3d.geometry.TriangleMesh.create_box(40.0, 0.01, 40.0).translate((-20.0, floor - 0.01, -20.0))
            self.ground_id = self.raycaster.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(plane))
            self.colours = np.concatenate([self.colours, np.asarray(ground, dtype=np.float64)[None]])
        self.sky, self.sun, self.ambient, self.objects = sky, np.asarray(sun), ambient, len(meshes)

    def _cast(self, origins: np.ndarray, dirs: np.ndarray) -> dict[str, np.ndarray]:
        import open3d as o3d

        rays = o3d.core.Tensor(np.concatenate([origins, dirs], -1).astype(np.float32))
        return {k: v.numpy() for k, v in self.raycaster.cast_rays(rays).items()}

    def render(self, world_to_camera: np.ndarray, focal: float, size: int) -> dict[str, np.ndarray]:
        """rgb [size, size, 3] in 0..1, mask [size, size] (object coverage > 0.5), z-depth [size, size] (0 off
        the object) for an OpenCV world-to-camera matrix and a focal length in pixels at `size`."""
        import open3d as o3d

        n = size * SUPERSAMPLE
        intrinsic = np.array([[focal * SUPERSAMPLE, 0, n / 2], [0, focal * SUPERSAMPLE, n / 2], [0, 0, 1]])
        rays = self.raycaster.create_rays_pinhole(
            o3d.core.Tensor(intrinsic), o3d.core.Tensor(world_to_camera), n, n
        ).numpy()
        origins, dirs = rays[..., :3].reshape(-1, 3), rays[..., 3:].reshape(-1, 3)
        hit = self._cast(origins, dirs)
        t, ids = hit["t_hit"], hit["geometry_ids"].astype(np.int64)
        found = np.isfinite(t)
        normals = hit["primitive_normals"]
        normals = normals * np.where((normals * dirs).sum(-1, keepdims=True) > 0, -1.0, 1.0)  # face the camera
        points = origins[found] + t[found, None] * dirs[found]
        shadow = self._cast(points + 1e-3 * normals[found], np.broadcast_to(self.sun, points.shape).copy())
        lit = np.zeros(len(t), dtype=bool)
        lit[found] = ~np.isfinite(shadow["t_hit"])  # nothing between the surface and the sun
        diffuse = np.clip(normals @ self.sun, 0.0, None) * lit
        colour = self.colours[np.where(found, ids, 0)] * (self.ambient + (1 - self.ambient) * diffuse)[:, None]
        up = (dirs / np.linalg.norm(dirs, axis=-1, keepdims=True))[:, 1:2]
        sky = self.sky[1] + (self.sky[0] - self.sky[1]) * np.clip(up, 0.0, 1.0)
        rgb = np.where(found[:, None], colour, sky)
        on_object = found & (ids != self.ground_id)
        # t is in units of the ray direction, whose camera z is 1: the z-depth itself
        z = np.where(on_object, t, 0.0)

        def pool(a: np.ndarray) -> np.ndarray:
            return a.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, *a.shape[2:]).mean((1, 3))

        coverage = pool(on_object.reshape(n, n).astype(np.float64))
        depth = pool(z.reshape(n, n)) / np.maximum(coverage, 1e-9)
        mask = coverage > 0.5
        return {"rgb": pool(rgb.reshape(n, n, 3)).clip(0, 1), "mask": mask, "depth": np.where(mask, depth, 0.0)}


def opencv_world_to_camera(distance: float, azimuth: float, elevation: float) -> np.ndarray:
    """OpenCV world-to-camera (x right, y down, z forward) of a camera at `distance` looking at the origin."""
    eye = distance * direction(azimuth, elevation)
    forward = -eye / distance
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: the camera's axes in world coordinates
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = rotation, -rotation @ eye
    return w2c


def write_scene(folder: Path, rng: np.random.Generator, views: int, size: int) -> None:
    """One scene into `folder` (written beside it, then renamed): images, masks, depth, transforms.json."""
    scene = random_scene(rng)
    fov = math.radians(rng.uniform(35, 50))
    focal = 0.5 * size / math.tan(fov / 2)

    def fill(tmp: Path) -> None:
        for sub in ("images", "masks", "depth"):
            (tmp / sub).mkdir()
        frames = []
        for i in range(views):
            pose = (rng.uniform(1.9, 2.6), rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(5, 45)))
            w2c = opencv_world_to_camera(*pose)
            out = scene.render(w2c, focal, size)
            name = f"frame_{i:05d}.png"
            Image.fromarray((out["rgb"] * 255 + 0.5).astype(np.uint8)).save(tmp / "images" / name)
            Image.fromarray(out["mask"].astype(np.uint8) * 255).save(tmp / "masks" / name)
            Image.fromarray(np.round(out["depth"] / DEPTH_SCALE).astype(np.uint16)).save(tmp / "depth" / name)
            c2w = np.linalg.inv(w2c) @ OPENCV_TO_OPENGL
            frame = {"file_path": f"images/{name}", "mask_path": f"masks/{name}", "depth_file_path": f"depth/{name}"}
            frames.append(frame | {"transform_matrix": c2w.tolist()})
        meta = {"camera_model": "PINHOLE", "fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2}
        meta |= {"w": size, "h": size, "depth_unit_scale_factor": DEPTH_SCALE, "frames": frames}
        meta |= {"renderer": "open3d raycast", "objects": scene.objects}
        (tmp / "transforms.json").write_text(json.dumps(meta))

    write_folder_atomic(folder, fill)


def write_scenes(root: str | Path, scenes: int, views: int, size: int, seed: int) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for index in range(scenes):
        write_scene(root / f"scene_{index:05d}", np.random.default_rng([seed, index]), views, size)
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the scenes")
    p.add_argument("--scenes", type=int, default=40)
    p.add_argument("--views", type=int, default=8, help="views per scene, the first one the input")
    p.add_argument("--size", type=int, default=32, help="image side in pixels")
    p.add_argument("--seed", type=int, default=100)
    a = p.parse_args(argv)
    if a.scenes < 1 or a.views < 2 or a.size < 2:
        print("error: --scenes >= 1, --views >= 2 and --size >= 2 are needed", file=sys.stderr)
        return 2
    write_scenes(a.out, a.scenes, a.views, a.size, a.seed)
    print(f"wrote {a.scenes} scenes x {a.views} views of {a.size}px to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
