"""Sphere tracing of signed-distance scenes on the CPU (numpy): colour, object mask and z-depth from the same rays,
and the cameras that look at the object. A scene is any object with sdf(p), shade(p, normal) and background(dirs)
(p, normal [N, 3] world points and unit normals; dirs [..., 3] unit directions)."""

from __future__ import annotations

import math

import numpy as np


def look_at_origin(distance: float, azimuth: float, elevation: float) -> np.ndarray:
    """OpenGL camera-to-world (looking down its -z, y up) at `distance` from the origin, looking at it, from
    `azimuth` about the world's y axis and `elevation` above the horizon (radians)."""
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


def trace(scene, c2w_gl: np.ndarray, focal: float, size: int) -> dict[str, np.ndarray]:
    """Sphere tracing of the scene's SDF from an OpenGL camera, one ray per pixel centre -> `rgb` [size, size, 3]
    in 0..1, `hit` [size, size] (the ray landed on the object) and `depth` [size, size] (z-depth of the hit along
    the camera's axis; 0 where nothing was hit). Colour, mask and depth come from the same rays, so they agree.
    `scene` provides sdf, background and shade (the surface colour at points with their normals)."""
    v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    cam = np.stack([(u - size / 2) / focal, -(v - size / 2) / focal, -np.ones_like(u)], -1)
    dirs = cam @ c2w_gl[:3, :3].T
    norms = np.linalg.norm(dirs, axis=-1, keepdims=True)
    dirs /= norms
    origin = c2w_gl[:3, 3]
    flat_dirs = dirs.reshape(-1, 3)
    t, hit = march(scene.sdf, origin, flat_dirs)
    hit = hit.reshape(dirs.shape[:-1])
    t = t.reshape(dirs.shape[:-1])
    image = scene.background(dirs)
    if hit.any():
        p = origin + t[hit][:, None] * dirs[hit]
        image[hit] = scene.shade(p, surface_normals(scene.sdf, p))
    depth = np.where(hit, t / norms[..., 0], 0.0)  # |cam| = 1 / cos(angle to the axis); cam's z is -1
    return {"rgb": np.clip(image, 0, 1), "hit": hit, "depth": depth}


def march(sdf, origin: np.ndarray, dirs: np.ndarray, steps: int = 96, far: float = 10.0) -> tuple[np.ndarray, ...]:
    """Sphere tracing of rays from `origin` ([3], or one per ray) along unit `dirs` [N, 3] -> distance t [N] and
    whether each ray landed on the surface (sdf < 1e-3) before `far`. Only the rays still in flight are
    evaluated at each step."""
    origins = np.broadcast_to(origin, dirs.shape)
    t = np.zeros(len(dirs))
    hit = np.zeros(len(dirs), bool)
    active = np.arange(len(dirs))  # rays still marching: not on the surface, not past `far`
    for _ in range(steps):
        d = sdf(origins[active] + t[active, None] * dirs[active])
        landed = d < 1e-3
        hit[active[landed]] = True
        t[active[~landed]] += d[~landed]
        active = active[~landed & (t[active] < far)]
        if not len(active):
            break
    return t, hit & (t < far)


def surface_normals(sdf, p: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Unit normals [N, 3] at surface points p [N, 3]: the SDF's central-difference gradient."""
    normal = np.stack([sdf(p + e) - sdf(p - e) for e in np.eye(3) * eps], -1)
    return normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)


def render(scene, c2w_gl: np.ndarray, focal: float, size: int) -> np.ndarray:
    """The colour of `trace`: [size, size, 3] in 0..1."""
    return trace(scene, c2w_gl, focal, size)["rgb"]


def supersampled(scene, c2w: np.ndarray, focal: float, size: int, factor: int = 2) -> dict[str, np.ndarray]:
    """`trace` at factor× the resolution, averaged down: `rgb` the mean colour, `mask` where at least half of
    each pixel's sub-rays hit the object, `depth` the mean z-depth of the sub-rays that hit (0 outside the mask)."""
    big = trace(scene, c2w, focal * factor, size * factor)

    def block_sum(a: np.ndarray) -> np.ndarray:
        return a.reshape(size, factor, size, factor).sum(axis=(1, 3))

    rgb = big["rgb"].reshape(size, factor, size, factor, 3).mean(axis=(1, 3))
    hits = block_sum(big["hit"].astype(float))
    mask = hits >= factor**2 / 2
    depth = np.where(mask, block_sum(big["depth"]) / np.maximum(hits, 1), 0.0)
    return {"rgb": rgb, "mask": mask, "depth": depth}
