"""Synthetic person re-identification data, rendered on the CPU: person-like figures (head, torso, arms, legs)
whose clothing colours, pattern, bag and hat make an identity, seen by several cameras with their own style;
written per domain in the Market-1501 layout.

    python -m reid.data.synthetic --out DIR [--identities N] [--cameras C] [--images-per-camera K]
        [--height H] [--width W] [--seed S] [--domains source,target] [--strength X]

Domains differ on purpose: "source" cameras each have their own backdrop and a moderate colour cast pointing
a different way for every camera (so a model trained there meets camera variation), over a population in bright
clothes; "target" cameras share one strong domain cast, low light, blur, sensor noise and heavy JPEG
compression, and a population in muted clothes, over backdrops shared by all its cameras (one hall), so that
camera style alone does not dominate an unsupervised clustering. Identities are drawn per domain, so the two
are disjoint; within a domain an identity keeps its clothes across cameras, so it stays recoverable there.
The "indoor" backdrop family remains available for custom StyleFamily presets.

DIR/<domain>/{bounding_box_train,query,bounding_box_test}/PPPP_cCs1_FFFFFF_00.jpg: the first half of the
identities trains; for each test identity one image from each of ceil(C/2) cameras is a query and everything
else is gallery, so every query has a gallery match in another camera. DIR/<domain>/meta.json is written last
and marks the domain complete.
"""

from __future__ import annotations

import colorsys
import io
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common.cli import OneLineParser, print_error
from common.files import write_bytes_atomic

SPLITS = ("bounding_box_train", "query", "bounding_box_test")
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "dots", "jacket", "logo")
LOWER = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "handbag")
VIEWS = ("front", "back", "left", "right")
SKIN = np.array([[0.95, 0.80, 0.69], [0.87, 0.68, 0.55], [0.76, 0.57, 0.42], [0.55, 0.38, 0.26], [0.36, 0.24, 0.16]])
HAIR = np.array([[0.06, 0.05, 0.05], [0.25, 0.15, 0.08], [0.50, 0.33, 0.16], [0.85, 0.72, 0.45], [0.6, 0.6, 0.6]])


@dataclass(frozen=True)
class StyleFamily:
    """The ranges a domain's cameras draw their styles from, plus the domain's background and clothing palette."""

    cast: tuple[float, float]  # log-gain of the colour cast along a hue direction in the chroma plane
    brightness: tuple[float, float]
    contrast: tuple[float, float]
    gamma: tuple[float, float]
    saturation: tuple[float, float]
    blur: tuple[float, float]  # Gaussian sigma in pixels at height 64
    noise: tuple[float, float]  # sensor noise std on 0..1 intensities
    quality: tuple[float, float]  # JPEG quality
    background: str  # "street" or "indoor"
    palette: str  # "bright" or "muted"
    hue_spread: float = 1.0  # cameras' cast directions cover this fraction of the hue circle (small: a domain cast)
    shared_backdrops: bool = False  # every shot picks any camera's backdrop (one hall), not its own camera's
    resolution: tuple[float, float] = (1.0, 1.0)  # the camera's sharpness as a fraction of the crop's pixels


FAMILIES = {
    "source": StyleFamily(
        cast=(0.1, 0.25),
        brightness=(0.95, 1.1),
        contrast=(0.95, 1.15),
        gamma=(0.85, 1.05),
        saturation=(0.95, 1.2),
        blur=(0.0, 0.35),
        noise=(0.004, 0.012),
        quality=(88, 95),
        background="street",
        palette="bright",
        hue_spread=1.0,
    ),
    "target": StyleFamily(
        cast=(0.25, 0.4),
        brightness=(0.7, 0.95),
        contrast=(0.75, 0.95),
        gamma=(1.05, 1.3),
        saturation=(0.65, 0.9),
        blur=(0.5, 0.9),
        noise=(0.02, 0.04),
        quality=(45, 70),
        background="street",
        palette="muted",
        hue_spread=0.1,
        shared_backdrops=True,
    ),
}
NEUTRAL = {
    "cast": 0.0,
    "brightness": 1.0,
    "contrast": 1.0,
    "gamma": 1.0,
    "saturation": 1.0,
    "blur": 0.0,
    "noise": 0.0,
    "quality": 95.0,
    "resolution": 1.0,  # last: drawn after the others, so families without it draw the values they always drew
}


@dataclass
class CameraStyle:
    """What one camera does to every image after rendering: colour cast, lighting, blur, noise, compression."""

    gains: tuple[float, float, float]
    brightness: float
    contrast: float
    gamma: float
    saturation: float
    blur: float
    noise: float
    quality: int
    resolution: float = 1.0

    @classmethod
    def sample(cls, family: StyleFamily, rng: np.random.Generator, hue: float, strength: float = 1.0) -> CameraStyle:
        """Draw from the family's ranges, then move each value toward neutral by `strength` (0: an ideal camera)."""
        drawn = {name: rng.uniform(*getattr(family, name)) for name in NEUTRAL}
        v = {name: NEUTRAL[name] + strength * (drawn[name] - NEUTRAL[name]) for name in NEUTRAL}
        # a unit direction in the plane of zero-sum RGB offsets, at angle `hue`: a pure colour cast, no brightness
        e1, e2 = np.array([1.0, -1.0, 0.0]) / math.sqrt(2), np.array([1.0, 1.0, -2.0]) / math.sqrt(6)
        direction = math.cos(hue) * e1 + math.sin(hue) * e2
        gains = np.exp(v["cast"] * direction / np.abs(direction).max())
        return cls(
            gains=tuple(round(float(g), 4) for g in gains),
            brightness=round(v["brightness"], 4),
            contrast=round(v["contrast"], 4),
            gamma=round(v["gamma"], 4),
            saturation=round(v["saturation"], 4),
            blur=round(v["blur"], 4),
            noise=round(v["noise"], 4),
            quality=int(round(v["quality"])),
            resolution=round(v["resolution"], 4),
        )

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Style a float [H, W, 3] image in 0..1; the light also varies a little from shot to shot."""
        img = image * np.asarray(self.gains)
        grey = img.mean(-1, keepdims=True)
        img = grey + self.saturation * (img - grey)
        img = (img - 0.5) * self.contrast + 0.5
        img = np.clip(img * self.brightness * rng.uniform(0.9, 1.1), 0, 1) ** self.gamma
        img = resample(img, self.resolution)
        img = gaussian_blur(img, self.blur * image.shape[0] / 64)
        img = img + rng.normal(0, self.noise, img.shape)
        return np.clip(img, 0, 1)


def resample(image: np.ndarray, resolution: float) -> np.ndarray:
    """A low-resolution camera: [H, W, 3] in 0..1 averaged down to `resolution` x its size (at least 4 x 2 pixels)
    and scaled back up bilinearly; resolution >= 0.99 leaves it unchanged."""
    if resolution >= 0.99:
        return image
    h, w = image.shape[:2]
    small = (max(2, round(w * resolution)), max(4, round(h * resolution)))
    pil = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    pil = pil.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.float64) / 255


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of [H, W, C] with edge padding; sigma in pixels (< 0.2: unchanged)."""
    if sigma < 0.2:
        return image
    r = max(1, math.ceil(2.5 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    h, w = image.shape[:2]
    padded = np.pad(image, ((r, r), (0, 0), (0, 0)), mode="edge")
    out = sum(k[i] * padded[i : i + h] for i in range(2 * r + 1))
    padded = np.pad(out, ((0, 0), (r, r), (0, 0)), mode="edge")
    return sum(k[i] * padded[:, i : i + w] for i in range(2 * r + 1))


def _colour(rng: np.random.Generator, palette: str) -> np.ndarray:
    """A clothing colour: achromatic (black, grey, white) or a hue; the muted palette is darker and greyer."""
    bright = palette == "bright"
    if rng.random() < (0.25 if bright else 0.4):
        return np.full(3, rng.choice([0.08, 0.3, 0.55, 0.9] if bright else [0.08, 0.25, 0.5, 0.85]))
    s = rng.uniform(0.45, 0.95) if bright else rng.uniform(0.3, 0.75)
    v = rng.uniform(0.45, 0.95) if bright else rng.uniform(0.35, 0.85)
    return np.array(colorsys.hsv_to_rgb(rng.random(), s, v))


@dataclass
class Person:
    """One identity's appearance, constant across cameras and shots."""

    skin: np.ndarray
    hair: np.ndarray
    long_hair: bool
    upper: np.ndarray
    upper2: np.ndarray  # the pattern's second colour
    pattern: str
    frequency: float
    long_sleeves: bool
    lower: np.ndarray
    lower_kind: str
    shoes: np.ndarray
    build: float  # width factor
    height: float  # fraction of the crop height the figure fills at a shot scale of 1
    bag: str
    bag_colour: np.ndarray
    hat: bool
    hat_colour: np.ndarray

    @classmethod
    def sample(cls, rng: np.random.Generator, palette: str = "bright") -> Person:
        upper = _colour(rng, palette)
        upper2 = _colour(rng, palette)
        while np.abs(upper2 - upper).sum() < 0.6:  # a pattern must show
            upper2 = _colour(rng, palette)
        return cls(
            skin=SKIN[rng.integers(len(SKIN))] * rng.uniform(0.93, 1.05),
            hair=HAIR[rng.integers(len(HAIR))],
            long_hair=bool(rng.random() < 0.35),
            upper=upper,
            upper2=upper2,
            pattern=PATTERNS[rng.choice(len(PATTERNS), p=[0.3, 0.14, 0.1, 0.1, 0.1, 0.13, 0.13])],
            frequency=float(rng.uniform(2.5, 4.5)),
            long_sleeves=bool(rng.random() < 0.5),
            lower=_colour(rng, palette),
            lower_kind=LOWER[rng.choice(3, p=[0.65, 0.2, 0.15])],
            shoes=_colour(rng, palette) * 0.6,
            build=float(rng.uniform(0.85, 1.2)),
            height=float(rng.uniform(0.86, 0.97)),
            bag=BAGS[rng.choice(3, p=[0.5, 0.3, 0.2])],
            bag_colour=_colour(rng, palette),
            hat=bool(rng.random() < 0.2),
            hat_colour=_colour(rng, palette),
        )

    def describe(self) -> dict:
        """JSON-friendly attributes (colours as hex)."""
        out = {}
        for key, value in asdict(self).items():
            if isinstance(value, np.ndarray):
                value = "#" + "".join(f"{int(round(c * 255)):02x}" for c in np.clip(value, 0, 1))
            out[key] = round(value, 3) if isinstance(value, float) else value
        return out


@dataclass(frozen=True)
class FigureStyle:
    """How a domain draws its people: body width (shoulders, hips, limbs) and head size as factors of the default
    figure's, and shading (0: flat colours, 1: the default round shading and side light)."""

    width: float = 1.0
    head: float = 1.0
    shading: float = 1.0


FIGURES = {
    "default": FigureStyle(),
    "stocky": FigureStyle(width=1.3, head=1.15),
    "slender": FigureStyle(width=0.75, head=0.9),
    "flat": FigureStyle(shading=0.0),
    "cartoon": FigureStyle(width=1.15, head=1.4, shading=0.0),
    "lanky": FigureStyle(width=0.9, head=0.8, shading=0.5),
    "broad": FigureStyle(width=1.2, head=0.85, shading=0.7),
    "petite": FigureStyle(width=0.85, head=1.2),
    "boxy": FigureStyle(width=1.4, head=1.0, shading=0.3),
    "tall": FigureStyle(width=0.8, head=0.75, shading=0.8),
    "round": FigureStyle(width=1.1, head=1.3, shading=0.4),
}


@dataclass
class Pose:
    """One shot: which way the person faces, stride and arm angles (radians), and the crop's scale and offset."""

    view: str = "front"
    stride: float = 0.15
    arm: float = 0.12
    scale: float = 1.0
    dx: float = 0.0  # offset of the figure's centre, as a fraction of the crop width
    dy: float = 0.0  # offset as a fraction of the crop height
    light: float = 0.0  # -1..1: light from the left or right

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Pose:
        return cls(
            view=VIEWS[rng.choice(4, p=[0.35, 0.35, 0.15, 0.15])],
            stride=float(rng.uniform(0.0, 0.4)),
            arm=float(rng.uniform(0.05, 0.3)),
            scale=float(rng.uniform(0.85, 1.05)),
            dx=float(rng.uniform(-0.1, 0.1)),
            dy=float(rng.uniform(-0.05, 0.05)),
            light=float(rng.uniform(-1, 1)),
        )


class _Canvas:
    """Paints shapes given by signed distances (in figure units) over an image, antialiased over one pixel."""

    def __init__(self, image: np.ndarray, x: np.ndarray, y: np.ndarray, pixel: float, shading: float = 1.0):
        self.image, self.x, self.y, self.pixel, self.shading = image, x, y, pixel, shading

    def paint(self, d: np.ndarray, colour: np.ndarray) -> None:
        a = np.clip(0.5 - d / self.pixel, 0, 1)[..., None]
        self.image += a * (colour - self.image)

    def capsule(self, a, b, r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distance to the segment a→b minus r, the position t along it (0..1), and a round shading factor."""
        (ax, ay), (bx, by) = a, b
        ux, uy = bx - ax, by - ay
        t = np.clip(((self.x - ax) * ux + (self.y - ay) * uy) / (ux * ux + uy * uy), 0, 1)
        dist = np.hypot(self.x - ax - t * ux, self.y - ay - t * uy)
        shade = 1 - 0.3 * self.shading * np.clip(dist / r, 0, 1) ** 2
        return dist - r, t, shade[..., None]

    def ellipse(self, cx, cy, rx, ry) -> np.ndarray:
        return (np.hypot((self.x - cx) / rx, (self.y - cy) / ry) - 1) * min(rx, ry)


def _limb(start, angles, lengths):
    """Joint positions of a chain hanging from `start`; angles from straight down, positive toward +x."""
    points = [start]
    for angle, length in zip(angles, lengths, strict=True):
        x, y = points[-1]
        points.append((x + length * math.sin(angle), y + length * math.cos(angle)))
    return points


def render_figure(
    person: Person,
    pose: Pose | None = None,
    *,
    height: int = 64,
    width: int = 32,
    background: np.ndarray | None = None,
    figure: FigureStyle | None = None,
) -> np.ndarray:
    """Render one person as a float [height, width, 3] image in 0..1 (before any camera style).

    The figure lives in units of its own height: y down from the top of the head (0) to the soles (1), x right
    of the body axis. Parts are painted back to front: far arm and leg, torso, near limbs, head, bag. `figure`
    changes how the figures are drawn (proportions, shading); the default draws them as they always were.
    """
    pose = pose or Pose()
    figure = figure or FigureStyle()
    image = np.full((height, width, 3), 0.5) if background is None else np.array(background, dtype=np.float64)
    size = person.height * pose.scale * height  # figure height in pixels
    v, u = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    top = (height - size) / 2 + pose.dy * height
    x = (u - width / 2 * (1 + 2 * pose.dx)) / size
    y = (v - top) / size
    c = _Canvas(image, x, y, 1 / size, figure.shading)

    side = pose.view in ("left", "right")
    facing = -1 if pose.view == "left" else 1
    b = person.build * figure.width
    shoulder, hip = 0.115 * b * (0.6 if side else 1), 0.09 * b * (0.7 if side else 1)
    torso_top, torso_bottom = 0.16, 0.52
    light = 1 + 0.15 * figure.shading * pose.light * np.clip(x / shoulder, -1, 1)[..., None]

    def arm(sign: float, swing: float) -> None:
        if side:
            angles, start = (swing, swing + facing * 0.35), (0.0, 0.19)
        else:
            angles, start = (sign * pose.arm, sign * pose.arm * 0.5), (sign * (shoulder - 0.025), 0.19)
        points = _limb(start, angles, (0.17, 0.17))
        r = 0.028 * b
        for i, (p, q) in enumerate(zip(points, points[1:], strict=False)):
            d, t, shade = c.capsule(p, q, r)
            sleeve = person.long_sleeves or i == 0
            colour = np.where((t < (0.85 if i else 1.01))[..., None] & sleeve, person.upper, person.skin)
            c.paint(d, colour * shade * light)

    def leg(sign: float, swing: float) -> None:
        if side:
            angles, start = (swing, swing - (0.3 if swing * facing < 0 else 0.0) * facing), (0.0, 0.5)
        else:
            angles, start = (sign * (0.04 + 0.2 * swing), sign * 0.02), (sign * 0.045 * b, 0.5)
        points = _limb(start, angles, (0.24, 0.23))
        for i, (p, q) in enumerate(zip(points, points[1:], strict=False)):
            d, t, shade = c.capsule(p, q, (0.044 if i == 0 else 0.034) * b)
            covered = person.lower_kind == "trousers" or (person.lower_kind == "shorts" and i == 0)
            colour = np.where(
                (t < (0.55 if person.lower_kind == "shorts" else 1.01))[..., None] & covered, person.lower, person.skin
            )
            c.paint(d, colour * shade * light)
        fx, fy = points[-1]
        c.paint(
            c.ellipse(fx + 0.02 * (facing if side else sign * 0.3), fy + 0.005, 0.045 if side else 0.03, 0.018),
            person.shoes,
        )

    stride, arm_swing = pose.stride * facing, 0.8 * pose.stride * facing
    # far limbs first: in a side view the far leg strides forward while the far arm swings back
    if side:
        if person.bag == "backpack":
            d = np.maximum(np.abs(x + facing * shoulder * 1.1) - 0.06, np.abs(y - 0.3) - 0.12)
            c.paint(d, person.bag_colour * light * 0.9)
        arm(0, -arm_swing)
        leg(0, stride)
    else:
        leg(-1, pose.stride)
        leg(1, pose.stride)

    # torso: a trapezoid from shoulders to hips, with the clothing pattern in torso coordinates
    width_at = shoulder + (hip - shoulder) * np.clip((y - torso_top) / (torso_bottom - torso_top), 0, 1)
    d = np.maximum(np.abs(x) - width_at, np.maximum(torso_top - y, y - torso_bottom))
    tu, tv = x / shoulder, (y - torso_top) / (torso_bottom - torso_top)
    f = person.frequency
    rows, cols = (tv * f * 1.5) % 1 < 0.5, ((tu + 1) * f / 2) % 1 < 0.5
    pattern = {
        "plain": lambda: np.zeros_like(tu, bool),
        "hstripes": lambda: rows,
        "vstripes": lambda: cols,
        "checks": lambda: rows ^ cols,
        "dots": lambda: ((tu * f / 2) % 1 - 0.5) ** 2 + ((tv * f) % 1 - 0.5) ** 2 < 0.08,
        "jacket": lambda: (np.abs(tu) < 0.3) & (pose.view == "front"),
        "logo": lambda: (np.abs(tu) < 0.45) & (np.abs(tv - 0.32) < 0.14) & (pose.view == "front"),
    }[person.pattern]()
    shade = (1 - 0.3 * figure.shading * np.clip(np.abs(x) / width_at, 0, 1) ** 2)[..., None]
    c.paint(d, np.where(pattern[..., None], person.upper2, person.upper) * shade * light)
    if person.lower_kind == "skirt":
        flare = hip * 1.05 + 0.08 * np.clip((y - 0.48) / 0.22, 0, 1)
        c.paint(np.maximum(np.abs(x) - flare, np.maximum(0.48 - y, y - 0.7)), person.lower * light)
    if person.bag == "backpack" and not side:
        if pose.view == "back":
            c.paint(np.maximum(np.abs(x) - 0.7 * shoulder, np.abs(y - 0.32) - 0.11), person.bag_colour * light)
        else:  # straps over the shoulders
            c.paint(np.maximum(np.abs(np.abs(x) - 0.6 * shoulder) - 0.012, np.abs(y - 0.27) - 0.1), person.bag_colour)

    if side:
        leg(0, -stride)
        arm(0, arm_swing)
    else:
        arm(-1, 0.0)
        arm(1, 0.0)

    # head and neck: skin in front, hair behind; a cap over the top when the person wears a hat
    hx, hy, rx, ry = 0.012 * facing * side, 0.075, 0.05 * (0.9 + 0.1 * b) * figure.head, 0.068 * figure.head
    d, _, _ = c.capsule((0.0, 0.12), (0.0, 0.17), 0.022)
    c.paint(d, person.skin * 0.9)
    if person.long_hair:
        c.paint(np.maximum(np.abs(x - hx + 0.01 * facing * side) - rx * 1.05, np.abs(y - 0.13) - 0.08), person.hair)
    head = c.ellipse(hx, hy, rx, ry)
    if pose.view == "back":
        c.paint(head, person.hair)
    else:
        face = 1 - 0.2 * figure.shading * np.clip(np.hypot(x - hx, y - hy) / ry, 0, 1) ** 2
        c.paint(head, person.skin * face[..., None])
        hair = head if not side else np.maximum(head, facing * (x - hx) + 0.01)
        c.paint(np.maximum(hair, y - (hy - 0.01)), person.hair)
    if person.hat:
        c.paint(np.maximum(c.ellipse(hx, hy - 0.01, rx * 1.1, ry * 0.95), y - (hy - 0.02)), person.hat_colour)
        c.paint(
            np.maximum(
                np.abs(x - hx - 0.03 * facing * side) - rx * (1.6 if side else 1.2), np.abs(y - hy + 0.02) - 0.008
            ),
            person.hat_colour,
        )
    if person.bag == "handbag":
        hand_side = facing if side else 1
        bx = hand_side * (shoulder + 0.04) if not side else 0.08 * facing
        c.paint(np.maximum(np.abs(x - bx) - 0.045, np.abs(y - 0.55) - 0.05), person.bag_colour * light)
    return np.clip(c.image, 0, 1)


def background_scene(family: StyleFamily, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A camera's fixed backdrop, twice as wide as a crop so each shot can show a different part of it.

    Street (source): a bright sky-to-wall gradient, building blocks and pavement. Indoor (target): tiled or
    brick walls with texture noise, a dark floor and a light pool from a lamp.
    """
    w2 = 2 * width
    v, u = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(w2) + 0.5) / w2, indexing="ij")
    horizon = rng.uniform(0.55, 0.8)
    if family.background == "street":
        sky0, sky1 = rng.uniform(0.55, 0.95, 3), rng.uniform(0.5, 0.95, 3)
        image = sky0 + (sky1 - sky0) * v[..., None]
        for _ in range(rng.integers(2, 5)):  # buildings, trees, shop fronts
            x0, bw, top = rng.uniform(0, 1), rng.uniform(0.1, 0.4), rng.uniform(0.05, horizon - 0.1)
            colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.4, 0.95)))
            inside = ((u - x0) % 1 < bw) & (v > top) & (v < horizon)
            image = np.where(inside[..., None], colour, image)
        ground = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.45, 0.8)))
        paving = 1 - 0.08 * ((u * rng.uniform(6, 12)) % 1 < 0.1)
        image = np.where((v > horizon)[..., None], ground * paving[..., None], image)
        image = image + rng.normal(0, 0.02, image.shape)
    else:
        wall = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.4), rng.uniform(0.35, 0.7)))
        rows, cols = rng.uniform(6, 12), rng.uniform(3, 8)
        brick = rng.random() < 0.5
        shift = 0.5 * (np.floor(v * rows) % 2) if brick else 0
        lines = ((v * rows) % 1 < 0.12) | (((u * cols + shift) % 1) < 0.08)
        image = wall * (1 - 0.25 * lines)[..., None] * rng.uniform(0.8, 1.2, (height, w2, 1)) ** 0.5
        floor = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.15, 0.4)))
        image = np.where((v > horizon)[..., None], floor * (0.7 + 0.6 * (v - horizon))[..., None], image)
        lamp_x, lamp_r = rng.uniform(0, 1), rng.uniform(0.2, 0.5)
        image = image * (0.75 + 0.5 * np.exp(-(((u - lamp_x) / lamp_r) ** 2) - (v / 0.6) ** 2))[..., None]
        image = image + rng.normal(0, 0.05, image.shape)
    return np.clip(image, 0, 1)


def market_name(pid: int, camera: int, frame: int) -> str:
    """Market-1501 file name: 4-digit person id, 1-based camera, sequence 1, 6-digit frame, box 00."""
    return f"{pid:04d}_c{camera}s1_{frame:06d}_00.jpg"


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def generate_domain(
    folder: Path,
    family: StyleFamily,
    *,
    identities: int,
    cameras: int,
    images_per_camera: int,
    height: int,
    width: int,
    seed: int,
    stream: int,
    strength: float = 1.0,
    progress=None,
    counts: np.ndarray | None = None,
    figure: FigureStyle | None = None,
) -> dict:
    """Render one domain into `folder` (Market-1501 layout) and return its metadata, also written to meta.json.

    `counts` [identities, cameras]: images of each identity in each camera (default: `images_per_camera`
    everywhere); every identity needs images in at least two cameras. `figure`: how people are drawn."""
    per_camera = np.full((identities, cameras), images_per_camera) if counts is None else np.asarray(counts)
    if per_camera.shape != (identities, cameras) or per_camera.min() < 0 or ((per_camera > 0).sum(1) < 2).any():
        raise ValueError(f"counts: expected [{identities}, {cameras}] counts >= 0, two cameras or more per identity")
    images_per_camera = int(per_camera.max())
    meta_path = folder / "meta.json"
    meta_path.unlink(missing_ok=True)  # the domain is incomplete until meta.json is back
    for split in SPLITS:
        (folder / split).mkdir(parents=True, exist_ok=True)

    def rng(*key: int) -> np.random.Generator:
        return np.random.default_rng([seed, stream, *key])

    hue0 = rng(0).uniform(0, 2 * math.pi)
    spread = 2 * math.pi * family.hue_spread
    hues = [hue0 + spread * (c / cameras + rng(2, c).uniform(-0.065, 0.065)) for c in range(cameras)]
    styles = [CameraStyle.sample(family, rng(1, c), hue, strength) for c, hue in enumerate(hues)]
    scenes = [background_scene(family, rng(3, c), height, width) for c in range(cameras)]
    people = [Person.sample(rng(4, pid), family.palette) for pid in range(1, identities + 1)]
    n_train = identities // 2
    n_query_cams = math.ceil(cameras / 2)  # at most cameras - 1: one camera always stays wholly in the gallery
    query_cams = {}
    for pid in range(1, identities + 1):
        seen = np.flatnonzero(per_camera[pid - 1])
        if len(seen) == cameras:
            query_cams[pid] = set(rng(5, pid).permutation(cameras)[:n_query_cams].tolist())
        else:  # an identity missing from some cameras: queries from half of those that saw it, never all
            query_cams[pid] = set(rng(5, pid).permutation(seen)[: math.ceil(len(seen) / 2)].tolist())
    # frames rise through each camera's recording; random gaps keep them under a million
    gaps = [
        rng(6, c).integers(1, max(2, 999_999 // (identities * images_per_camera)), identities * images_per_camera)
        for c in range(cameras)
    ]
    frames = [np.cumsum(g) for g in gaps]

    written = {split: set() for split in SPLITS}
    counts = {split: {"images": 0, "ids": set()} for split in SPLITS}
    for pid in range(1, identities + 1):
        for c in range(cameras):
            for k in range(per_camera[pid - 1, c]):
                r = rng(7, pid, c, k)
                offset = r.integers(0, width + 1)
                scene = scenes[r.integers(cameras) if family.shared_backdrops else c]
                image = render_figure(
                    people[pid - 1],
                    Pose.sample(r),
                    height=height,
                    width=width,
                    background=scene[:, offset : offset + width] * r.uniform(0.92, 1.08),
                    figure=figure,
                )
                image = styles[c].apply(image, r)
                if pid <= n_train:
                    split = "bounding_box_train"
                elif k == 0 and c in query_cams[pid]:
                    split = "query"
                else:
                    split = "bounding_box_test"
                name = market_name(pid, c + 1, int(frames[c][(pid - 1) * images_per_camera + k]))
                write_bytes_atomic(folder / split / name, _jpeg(image, styles[c].quality))
                written[split].add(name)
                counts[split]["images"] += 1
                counts[split]["ids"].add(pid)
        if progress is not None:
            progress()
    for split in SPLITS:  # files left by an earlier run with other settings
        for stale in (folder / split).glob("*.jpg"):
            if stale.name not in written[split]:
                stale.unlink()
    meta = {
        "format": "market1501",
        "domain": folder.name,
        "seed": seed,
        "strength": strength,
        "identities": identities,
        "cameras": cameras,
        "images_per_camera": images_per_camera,
        "height": height,
        "width": width,
        "splits": {s: {"images": v["images"], "ids": len(v["ids"])} for s, v in counts.items()},
        "train_ids": [1, n_train],
        "test_ids": [n_train + 1, identities],
        "background": family.background,
        "palette": family.palette,
        "camera_styles": [asdict(s) for s in styles],
        "figure": asdict(figure or FigureStyle()),
        "images_per_identity_and_camera": per_camera.tolist(),
        "people": {pid: p.describe() for pid, p in enumerate(people, 1)},
    }
    write_bytes_atomic(meta_path, json.dumps(meta, indent=1).encode())
    return meta


def generate(
    out: str | Path,
    identities: int = 64,
    cameras: int = 4,
    images_per_camera: int = 3,
    height: int = 64,
    width: int = 32,
    seed: int = 0,
    domains: str | tuple[str, ...] | list[str] = ("source", "target"),
    strength: float = 1.0,
    progress: bool = False,
) -> dict:
    """Write each domain under `out`/<domain> in the Market-1501 layout; returns {domain: metadata}. `progress`: a
    bar on stderr, one step per identity.

    Domain names pick a style family from FAMILIES; `strength` scales every camera's departure from an ideal
    camera (0: no cast, blur or noise; 1: the family's ranges). The same arguments always give the same files.
    """
    if isinstance(domains, str):
        domains = [d.strip() for d in domains.split(",") if d.strip()]
    _check(identities, cameras, images_per_camera, height, width, seed, domains, strength)
    out = Path(out)
    from tqdm import tqdm

    bar = tqdm(
        total=identities * len(domains), desc="rendering identities", unit="id", file=sys.stderr, disable=not progress
    )
    try:
        return {
            name: generate_domain(
                out / name,
                FAMILIES[name],
                identities=identities,
                cameras=cameras,
                images_per_camera=images_per_camera,
                height=height,
                width=width,
                seed=seed,
                stream=list(FAMILIES).index(name),
                strength=strength,
                progress=bar.update if progress else None,
            )
            for name in domains
        }
    finally:
        bar.close()


def _check(identities, cameras, images_per_camera, height, width, seed, domains, strength) -> None:
    if identities < 2:
        raise ValueError(f"identities must be >= 2 (one to train, one to test), got {identities}")
    if cameras < 2:
        raise ValueError(f"cameras must be >= 2 (queries need a match in another camera), got {cameras}")
    if images_per_camera < 1:
        raise ValueError(f"images_per_camera must be >= 1, got {images_per_camera}")
    if height < 16 or width < 8:
        raise ValueError(f"height must be >= 16 and width >= 8, got {height}x{width}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not domains or len(set(domains)) != len(domains) or any(d not in FAMILIES for d in domains):
        raise ValueError(f"domains must be distinct names from {', '.join(FAMILIES)}, got {','.join(domains)}")
    if not 0 <= strength <= 2:
        raise ValueError(f"strength must be in [0, 2], got {strength}")


def main(argv=None) -> int:
    p = OneLineParser(name_errors=False, prog="python -m reid.data.synthetic", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--identities", type=int, default=64, help="per domain; the first half trains")
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--images-per-camera", type=int, default=3)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domains", default="source,target", help=f"comma-separated, from {','.join(FAMILIES)}")
    p.add_argument("--strength", type=float, default=1.0, help="camera style strength: 0 ideal cameras, 1 default")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (it shows only on a terminal)")
    args = p.parse_args(argv)
    domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    kw = dict(
        identities=args.identities,
        cameras=args.cameras,
        images_per_camera=args.images_per_camera,
        height=args.height,
        width=args.width,
        seed=args.seed,
        domains=domains,
        strength=args.strength,
    )
    try:
        _check(**kw)
    except ValueError as error:
        return print_error(f"--{str(error).replace('_', '-')}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        if not os.access(args.out, os.W_OK):
            raise PermissionError("not writable")
    except OSError as error:
        return print_error(f"--out: cannot write to {args.out}: {error}")
    print_summary(args.out, generate(args.out, progress=not args.quiet and sys.stderr.isatty(), **kw))
    return 0


def add_output_options(parser: OneLineParser) -> None:
    """--out, --height and --width, the options every data generator's command line has."""
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)


def run_generator(args, render) -> int:
    """The end of a generator's command line: check the size, call `render()` -> {domain: metadata}, print the
    summary; bad values and unwritable folders as one line on stderr and exit code 2."""
    if args.height < 16 or args.width < 8:
        return print_error(f"--height must be >= 16 and --width >= 8, got {args.height}x{args.width}")
    try:
        meta = render()
    except ValueError as error:
        return print_error(f"--{error}")
    except OSError as error:
        return print_error(f"--out: cannot write to {args.out}: {error}")
    print_summary(args.out, meta)
    return 0


def print_summary(out: Path, meta: dict) -> None:
    """One line per domain written: its folder, and images and identities per split."""
    for name, m in meta.items():
        sizes = ", ".join(f"{s} {v['images']} images / {v['ids']} ids" for s, v in m["splits"].items())
        print(f"{out / name}: {sizes}")


if __name__ == "__main__":
    sys.exit(main())
