"""Procedural shapes on textured backgrounds: a classification set made on the fly, for tests and demos.

The class is the shape; colour, size, position, rotation, fill texture and background texture vary
freely, so a model must learn shape, not colour. Image i of a split is a pure function of (seed, split, style, i).

Two styles share the shapes and nothing of their look. "classic": textured fills (flat, stripes, checks, linear
gradients, pixel noise) on backgrounds of the same kinds. "outlined": a flat fill with an outline of another
colour and a soft drop shadow, on smooth value-noise or radial-gradient backgrounds, shapes over a wider range of
sizes and squashed along one axis, then a random gamma, and one image in three in grey. A model trained on one
style and tested on the other shows whether it learned the shapes or the generator.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from torch.utils.data import Dataset

SHAPES = ("circle", "square", "triangle", "cross", "ring", "star", "hexagon", "bar")
STYLES = ("classic", "outlined")
_SPLIT_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003}


def _polygon(cx: float, cy: float, radius: float, corners: int, angle: float, inner: float | None = None):
    points = []
    steps = corners * (2 if inner else 1)
    for i in range(steps):
        r = radius if inner is None or i % 2 == 0 else radius * inner
        a = angle + 2 * math.pi * i / steps
        points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return points


def _bar(cx: float, cy: float, half_length: float, half_width: float, angle: float):
    """The four corners of a rectangle centred at (cx, cy), its long axis at `angle`."""
    dx, dy = math.cos(angle), math.sin(angle)
    ox, oy = -dy * half_width, dx * half_width
    ends = ((-half_length, 1), (half_length, 1), (half_length, -1), (-half_length, -1))
    return [(cx + dx * t + ox * side, cy + dy * t + oy * side) for t, side in ends]


def _texture(rng: np.random.Generator, size: int, base: np.ndarray) -> np.ndarray:
    """An RGB texture around a base colour: flat, stripes, checks, gradient or noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.integers(5)
    if kind == 0:
        pattern = np.zeros((size, size), np.float32)
    elif kind == 1:
        freq, theta = rng.uniform(3, 10), rng.uniform(0, math.pi)
        pattern = np.sin(2 * math.pi * freq * (xx * math.cos(theta) + yy * math.sin(theta)))
    elif kind == 2:
        freq = rng.integers(2, 8)
        pattern = ((np.floor(xx * freq) + np.floor(yy * freq)) % 2) * 2 - 1
    elif kind == 3:
        pattern = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) * 2
    else:
        pattern = rng.standard_normal((size, size)).astype(np.float32)
    contrast = rng.uniform(0.05, 0.35)
    second = rng.uniform(0, 1, 3)
    image = base[None, None, :] + contrast * pattern[..., None] * (second - 0.5)[None, None, :] * 2
    return np.clip(image, 0, 1)


def _draw_mask(name: str, big: int, radius: float, cx: float, cy: float, angle: float) -> Image.Image:
    """The shape as an 8-bit mask of big×big pixels (255 inside)."""
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    if name == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
    elif name == "ring":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
        r2 = radius * 0.55
        draw.ellipse([cx - r2, cy - r2, cx + r2, cy + r2], fill=0)
    elif name == "square":
        draw.polygon(_polygon(cx, cy, radius, 4, angle), fill=255)
    elif name == "triangle":
        draw.polygon(_polygon(cx, cy, radius, 3, angle), fill=255)
    elif name == "hexagon":
        draw.polygon(_polygon(cx, cy, radius, 6, angle), fill=255)
    elif name == "star":
        draw.polygon(_polygon(cx, cy, radius, 5, angle, inner=0.4), fill=255)
    elif name == "cross":
        for a in (angle, angle + math.pi / 2):
            draw.polygon(_bar(cx, cy, radius, radius * 0.3, a), fill=255)
    elif name == "bar":
        draw.polygon(_bar(cx, cy, radius, radius * 0.25, angle), fill=255)
    return mask


def _coverage(mask: Image.Image, size: int) -> np.ndarray:
    """A big mask box-filtered down to size×size: [size, size, 1] coverage in 0..1 (anti-aliased edges)."""
    return np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float32)[..., None] / 255


def render_shape(label: int, size: int, rng: np.random.Generator, style: str = "classic") -> np.ndarray:
    """One HxWx3 float image in 0..1 showing shape SHAPES[label], in one of STYLES."""
    if style == "outlined":
        return _render_outlined(SHAPES[label], size, rng)
    if style != "classic":
        raise ValueError(f"style: expected one of {STYLES}, got {style!r}")
    background = _texture(rng, size, rng.uniform(0, 1, 3))
    color = rng.uniform(0, 1, 3)
    while np.abs(color - background.mean((0, 1))).sum() < 0.6:  # keep the shape visible
        color = rng.uniform(0, 1, 3)
    foreground = _texture(rng, size, color)

    scale = 4  # draw the mask at 4x and downsample: anti-aliased edges
    big = size * scale
    radius = rng.uniform(0.22, 0.4) * big
    cx, cy = (rng.uniform(radius, big - radius) for _ in range(2))
    angle = rng.uniform(0, 2 * math.pi)
    alpha = _coverage(_draw_mask(SHAPES[label], big, radius, cx, cy, angle), size)
    return background * (1 - alpha) + foreground * alpha


def _smooth_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Value noise (a coarse random grid, bicubic-upsampled) or a radial gradient, in two random colours."""
    a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    if rng.random() < 0.5:
        cells = int(rng.integers(2, 6))
        grid = Image.fromarray((rng.uniform(0, 1, (cells, cells)) * 255).astype(np.uint8))
        t = np.asarray(grid.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    else:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        ox, oy = rng.uniform(0, 1, 2)
        t = np.clip(np.hypot(xx - ox, yy - oy) / rng.uniform(0.5, 1.2), 0, 1)
    return a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]


def _render_outlined(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    background = _smooth_background(rng, size)
    fill, outline = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    while np.abs(fill - background.mean((0, 1))).sum() < 0.6:
        fill = rng.uniform(0, 1, 3)

    scale = 4
    big = size * scale
    radius = rng.uniform(0.18, 0.42) * big
    cx, cy = (rng.uniform(radius, big - radius) for _ in range(2))
    mask = _draw_mask(name, big, radius, cx, cy, rng.uniform(0, 2 * math.pi))
    squash = rng.uniform(0.75, 1.0)  # squashed along x or y, then put back at the same place
    if rng.random() < 0.5:
        squashed = mask.resize((big, round(big * squash)))
        mask = Image.new("L", (big, big), 0)
        mask.paste(squashed, (0, round(cy * (1 - squash))))
    else:
        squashed = mask.resize((round(big * squash), big))
        mask = Image.new("L", (big, big), 0)
        mask.paste(squashed, (round(cx * (1 - squash)), 0))
    width = max(3, round(big * rng.uniform(0.02, 0.05)))
    inner = mask.filter(ImageFilter.MinFilter(2 * (width // 2) + 1))
    offset = round(big * rng.uniform(0.02, 0.06))
    shadow = Image.new("L", (big, big), 0)
    shadow.paste(mask, (offset, offset))
    shadow = shadow.filter(ImageFilter.GaussianBlur(big * 0.02))

    body, core, shade = (_coverage(m, size) for m in (mask, inner, shadow))
    image = background * (1 - 0.5 * shade)
    image = image * (1 - body) + outline[None, None, :] * body
    image = image * (1 - core) + fill[None, None, :] * core
    image = np.clip(image, 0, 1) ** rng.uniform(0.6, 1.6)
    if rng.random() < 1 / 3:
        image = np.repeat(image @ np.array([0.299, 0.587, 0.114], np.float32)[:, None], 3, axis=2)
    return image.astype(np.float32)


class SyntheticShapes(Dataset):
    """`length` images of `num_classes` shape classes (balanced), as ([3,S,S] float tensor in 0..1, label)."""

    def __init__(
        self,
        length: int,
        image_size: int = 32,
        num_classes: int = 4,
        seed: int = 0,
        split: str = "train",
        transform=None,
        style: str = "classic",
    ):
        if not 2 <= num_classes <= len(SHAPES):
            raise ValueError(f"num_classes: expected 2..{len(SHAPES)}, got {num_classes}")
        if split not in _SPLIT_OFFSET:
            raise ValueError(f"split: expected one of {tuple(_SPLIT_OFFSET)}, got {split!r}")
        if style not in STYLES:
            raise ValueError(f"style: expected one of {STYLES}, got {style!r}")
        if length < 1 or image_size < 8:
            raise ValueError(f"length >= 1 and image_size >= 8 expected, got {length}, {image_size}")
        self.length, self.image_size, self.num_classes = length, image_size, num_classes
        self.seed, self.split, self.transform, self.style = seed, split, transform, style
        self.classes = list(SHAPES[:num_classes])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(index)
        label = index % self.num_classes
        stream = [self.seed, _SPLIT_OFFSET[self.split], index]
        if self.style != "classic":  # classic keeps the images it had before there were styles
            stream.append(STYLES.index(self.style))
        rng = np.random.default_rng(stream)
        image = render_shape(label, self.image_size, rng, self.style)
        image = torch.from_numpy(image).permute(2, 0, 1).float().contiguous()
        if self.transform is not None:
            image = self.transform(image)
        return image, label
