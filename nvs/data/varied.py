"""The "varied" family of synthetic scenes: one to three parts (solid, concave and thin primitives, some carved by
CSG difference or intersection) lit by a distant light that casts shadows, in one of several environments, seen
from cameras at random distances and elevations through a random focal length. Shape, not one look, is what
varies, so that a model trained on these has to learn geometry.

Every scene provides what the tracer in raymarch.py needs: sdf(p), shade(p, normal) and background(dirs);
`camera(rng)` draws a view and `fov_deg` is the scene's field of view. The parts are scaled to fit inside the ball
of radius 0.7 at the origin (so inside [-0.7, 0.7]³, the field's box with a margin).
"""

from __future__ import annotations

import math

import numpy as np

from .raymarch import look_at_origin, march

FIT_RADIUS = 0.7
ENVIRONMENTS = ("sky", "ground", "plain", "studio")


# -- primitives: signed distances in a unit frame, each inside the unit ball ----------------------------------------


def _box_sdf(q: np.ndarray, half: np.ndarray) -> np.ndarray:
    e = np.abs(q) - half
    return np.linalg.norm(np.maximum(e, 0), axis=-1) + np.minimum(e.max(axis=-1), 0)


def _cylinder_sdf(q: np.ndarray, radius: float, half_height: float) -> np.ndarray:
    e = np.stack([np.linalg.norm(q[..., [0, 2]], axis=-1) - radius, np.abs(q[..., 1]) - half_height], -1)
    return np.linalg.norm(np.maximum(e, 0), axis=-1) + np.minimum(e.max(axis=-1), 0)


def _torus_sdf(q: np.ndarray, major: float, minor: float) -> np.ndarray:
    ring = np.linalg.norm(q[..., [0, 2]], axis=-1) - major
    return np.hypot(ring, q[..., 1]) - minor


def _capsule_sdf(q: np.ndarray, half: float, radius: float) -> np.ndarray:
    y = np.clip(q[..., 1], -half, half)
    return np.linalg.norm(q - np.stack([np.zeros_like(y), y, np.zeros_like(y)], -1), axis=-1) - radius


def _cone_sdf(q: np.ndarray, radius: float, half_height: float) -> np.ndarray:
    """A solid cone, apex up at y = +half_height, base of `radius` at y = -half_height: the intersection of the
    slab and the infinite cone, a bound of the distance (fine for sphere tracing)."""
    r = np.linalg.norm(q[..., [0, 2]], axis=-1)
    slope = radius / (2 * half_height)
    side = (r - slope * (half_height - q[..., 1])) / math.sqrt(1 + slope**2)
    return np.maximum(side, np.abs(q[..., 1]) - half_height)


def _cup_sdf(q: np.ndarray, radius: float, half_height: float, wall: float) -> np.ndarray:
    """A cup: a cylinder with a cylindrical hollow open at the top (concave from most views)."""
    outer = _cylinder_sdf(q, radius, half_height)
    hollow = _cylinder_sdf(q - np.array([0.0, wall, 0.0]), radius - wall, half_height)  # open through the top
    return np.maximum(outer, -hollow)


def primitive_sdf(kind: str, q: np.ndarray, a: float, b: float) -> np.ndarray:
    """Signed distance of primitive `kind` with shape parameters a, b in [0, 1], at points q [..., 3] of its unit
    frame; every primitive fits inside the unit ball."""
    if kind == "sphere":
        return np.linalg.norm(q, axis=-1) - (0.7 + 0.3 * a)
    if kind == "box":
        return _box_sdf(q, np.array([0.35 + 0.2 * a, 0.35 + 0.2 * b, 0.45]))
    if kind == "rounded_box":
        return _box_sdf(q, np.array([0.3 + 0.15 * a, 0.3 + 0.15 * b, 0.35])) - 0.15
    if kind == "cylinder":
        return _cylinder_sdf(q, 0.35 + 0.3 * a, 0.35 + 0.3 * b)
    if kind == "cone":
        return _cone_sdf(q, 0.4 + 0.3 * a, 0.45 + 0.2 * b)
    if kind == "torus":
        return _torus_sdf(q, 0.55 + 0.15 * a, 0.15 + 0.12 * b)
    if kind == "capsule":
        return _capsule_sdf(q, 0.3 + 0.3 * a, 0.2 + 0.15 * b)
    if kind == "cup":
        return _cup_sdf(q, 0.45 + 0.25 * a, 0.4 + 0.25 * b, 0.08 + 0.04 * a)
    if kind == "rod":  # thin part
        return _capsule_sdf(q, 0.75 + 0.15 * a, 0.05 + 0.04 * b)
    if kind == "plate":  # thin part
        return _box_sdf(q, np.array([0.5 + 0.2 * a, 0.04 + 0.03 * b, 0.4 + 0.2 * b]))
    if kind == "ring":  # thin, with a hole
        return _torus_sdf(q, 0.65 + 0.2 * a, 0.05 + 0.04 * b)
    raise ValueError(f"primitive: unknown kind {kind!r}")


PRIMITIVES = ("sphere", "box", "rounded_box", "cylinder", "cone", "torus", "capsule", "cup", "rod", "plate", "ring")
CUTTERS = ("sphere", "box", "cylinder")  # what a CSG difference or intersection carves with


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


class Part:
    """A primitive placed in the scene: rotation, scale and centre, optionally carved by a second primitive
    (CSG "difference" or "intersection"), and its own two colours and pattern."""

    def __init__(self, rng: np.random.Generator, center: np.ndarray, scale: float):
        self.kind = PRIMITIVES[rng.integers(len(PRIMITIVES))]
        self.rotation, self.center, self.scale = random_rotation(rng), center, scale
        self.a, self.b = rng.uniform(0, 1, 2)
        self.csg = ("none", "none", "difference", "intersection")[rng.integers(4)]
        if self.kind in ("rod", "plate", "ring"):
            self.csg = "none"  # carving a thin part mostly removes it
        self.cutter = CUTTERS[rng.integers(len(CUTTERS))]
        # a difference bites into the part from one side; an intersection trims it around a nearby centre
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        if self.csg == "difference":
            self.cutter_offset, self.cutter_size = direction * rng.uniform(0.55, 0.85), rng.uniform(0.4, 0.65)
        else:
            self.cutter_offset, self.cutter_size = direction * rng.uniform(0.1, 0.35), rng.uniform(0.7, 0.95)
        self.colors = rng.uniform(0.05, 0.95, (2, 3))
        self.pattern = ("plain", "checker", "stripes")[rng.integers(3)]
        self.frequency = rng.uniform(2.0, 5.0)

    def local(self, p: np.ndarray) -> np.ndarray:
        return (p - self.center) @ self.rotation / self.scale

    def sdf(self, p: np.ndarray) -> np.ndarray:
        q = self.local(p)
        d = primitive_sdf(self.kind, q, self.a, self.b)
        if self.csg != "none":
            cut = primitive_sdf(self.cutter, (q - self.cutter_offset) / self.cutter_size, 0.5, 0.5) * self.cutter_size
            d = np.maximum(d, -cut) if self.csg == "difference" else np.maximum(d, cut)
        return d * self.scale

    def albedo(self, p: np.ndarray) -> np.ndarray:
        q = self.local(p)
        if self.pattern == "checker":
            t = np.floor(q * self.frequency).sum(-1) % 2
        elif self.pattern == "stripes":
            t = 0.5 + 0.5 * np.sin(q[..., 1] * self.frequency * math.pi)
        else:
            t = np.zeros(q.shape[:-1])
        return self.colors[0] * (1 - t[..., None]) + self.colors[1] * t[..., None]

    def describe(self) -> str:
        operator = {"none": "", "difference": "-", "intersection": "&"}[self.csg]
        return self.kind if not operator else f"{self.kind}{operator}{self.cutter}"


class Environment:
    """A background that depends on the viewing direction only (as if infinitely far), so every view agrees:
    "sky" (gradient above a soft horizon and a plain ground), "ground" (the same sky above a checkered ground
    plane seen from the object's centre), "plain" (one colour) or "studio" (a vertical two-colour gradient)."""

    def __init__(self, rng: np.random.Generator):
        self.kind = ENVIRONMENTS[rng.integers(len(ENVIRONMENTS))]
        self.sky = rng.uniform(0.1, 1.0, (2, 3))  # horizon, zenith
        self.ground = rng.uniform(0.05, 0.8, (2, 3))  # two ground colours (the checker's)
        self.tile = rng.uniform(0.3, 1.0)  # checker tile size on the ground plane one unit below the object

    def __call__(self, dirs: np.ndarray) -> np.ndarray:
        up = dirs[..., 1:2]
        if self.kind == "plain":
            return np.broadcast_to(self.sky[0], dirs.shape).copy()
        if self.kind == "studio":
            return self.sky[0] + (self.sky[1] - self.sky[0]) * (0.5 + 0.5 * up)
        sky = self.sky[0] + (self.sky[1] - self.sky[0]) * np.clip(up, 0, 1)
        ground = np.broadcast_to(self.ground[0], dirs.shape)
        if self.kind == "ground":
            reach = 1.0 / np.maximum(-up, 1e-3)  # where the ray from the centre meets the plane y = -1
            x, z = dirs[..., 0:1] * reach, dirs[..., 2:3] * reach
            checker = (np.floor(x / self.tile) + np.floor(z / self.tile)) % 2
            fade = np.exp(-np.hypot(x, z) / 12)  # far tiles blur into their mean, as they would at a distance
            ground = (self.ground[0] * (1 - checker) + self.ground[1] * checker) * fade + self.ground.mean(0) * (
                1 - fade
            )
        blend = 1 / (1 + np.exp(-up * 12))
        return sky * blend + ground * (1 - blend)


class VariedScene:
    """One to three parts in a random arrangement, a shadowing distant light, an environment and camera ranges."""

    def __init__(self, rng: np.random.Generator):
        count = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
        centers = rng.uniform(-0.3, 0.3, (count, 3)) * (count > 1)
        scales = rng.uniform(0.35, 0.55, count) if count > 1 else np.array([rng.uniform(0.55, 0.7)])
        self.parts = [Part(rng, centers[i], float(scales[i])) for i in range(count)]
        reach = max(float(np.linalg.norm(part.center)) + part.scale for part in self.parts)
        fit = min(1.0, FIT_RADIUS / reach)  # every primitive lies in its unit ball, so this bounds the whole
        for part in self.parts:
            part.center, part.scale = part.center * fit, part.scale * fit
        self.radius = reach * fit  # the parts lie inside the ball of this radius
        azimuth, elevation = rng.uniform(0, 2 * math.pi), rng.uniform(math.radians(25), math.radians(75))
        self.light = np.array(
            [math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)]
        )
        self.ambient = rng.uniform(0.2, 0.45)
        self.light_colour = 1.0 - rng.uniform(0.0, 0.15, 3)
        self.environment = Environment(rng)
        self.fov_deg = rng.uniform(25.0, 60.0)
        # the object's half-extent fills this fraction of the half-image at the scene's typical distance
        fill = rng.uniform(0.5, 0.85)
        self.distance = max(1.5, self.radius / (fill * math.tan(math.radians(self.fov_deg) / 2)))

    @property
    def shape(self) -> str:
        return "+".join(part.describe() for part in self.parts)

    def _distances(self, p: np.ndarray) -> np.ndarray:
        return np.stack([part.sdf(p) for part in self.parts], -1)

    def sdf(self, p: np.ndarray) -> np.ndarray:
        return self._distances(p).min(axis=-1)

    def shade(self, p: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Each point takes its nearest part's albedo under ambient light plus a Lambertian term, zero where a
        shadow ray towards the light hits the scene."""
        nearest = self._distances(p).argmin(axis=-1)
        albedo = np.zeros_like(p)
        for i, part in enumerate(self.parts):
            chosen = nearest == i
            if chosen.any():
                albedo[chosen] = part.albedo(p[chosen])
        facing = np.clip(normal @ self.light, 0, 1)
        lit = facing > 0
        if lit.any():
            start = p[lit] + normal[lit] * 4e-3
            _, blocked = march(self.sdf, start, np.broadcast_to(self.light, start.shape), steps=64, far=3.0)
            facing[np.flatnonzero(lit)[blocked]] = 0.0
        light = self.ambient + (1 - self.ambient) * facing[:, None] * self.light_colour
        return albedo * light

    def background(self, dirs: np.ndarray) -> np.ndarray:
        return self.environment(dirs)

    def camera(self, rng: np.random.Generator) -> np.ndarray:
        """OpenGL camera-to-world looking at the origin from a random azimuth, an elevation in [-15°, 65°] and a
        distance within 0.85-1.25× the scene's typical one."""
        distance = self.distance * rng.uniform(0.85, 1.25)
        return look_at_origin(distance, rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-15, 65)))
