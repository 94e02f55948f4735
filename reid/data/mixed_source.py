"""A source domain made of many synthetic styles, for stage 1: each part draws its own camera style ranges
(casts, light, contrast, blur, noise, resolution, JPEG), backdrop, clothing palette and figure proportions at
random, so a model trained on it has met many kinds of camera network rather than one. The parts' generator
seeds and styles are drawn apart from the tuned pair's and the held-out domains' (reid.data.domains), and the
figure proportions are drawn from continuous ranges, never one of the named FIGURES presets.

    python -m reid.data.mixed_source --out DIR [--parts 8] [--identities 12] [--seed 0] [--base MARKET_DIR]
        [--height H] [--width W]

DIR/source/{bounding_box_train,query,bounding_box_test}: every part's identities and cameras renumbered so that
they stay apart (part p's cameras come after part p-1's); DIR/source/meta.json lists the parts' styles.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from common.cli import OneLineParser
from common.files import write_bytes_atomic

from .domains import DOMAINS, TUNED_SEEDS
from .synthetic import (
    SPLITS,
    FigureStyle,
    StyleFamily,
    add_output_options,
    generate_domain,
    market_name,
    run_generator,
)

SEED_BASE = 1000  # part p of mixed source s renders with generator seed SEED_BASE + 100 s + p
RESERVED_SEEDS = set(TUNED_SEEDS) | {spec.seed for spec in DOMAINS.values()}


def _span(rng: np.random.Generator, low: float, high: float, width: float) -> tuple[float, float]:
    """A random sub-range of [low, high] about `width` of its length wide."""
    start = rng.uniform(low, high - width * (high - low))
    return round(float(start), 3), round(float(start + width * (high - low)), 3)


_NAME = re.compile(r"^(-?\d+)_c(\d+)s\d+_(\d+)_\d+\.jpg$")  # Market-1501: pid, camera, frame


def _market_files(base: Path, folder: Path) -> dict[Path, tuple[int, int]]:
    """{image: (pid, camera)} of a Market-1501 folder's three splits, checked before anything is written."""
    if not (base / SPLITS[0]).is_dir():
        raise ValueError(f"base: {base} has no {SPLITS[0]} folder (Market-1501 layout expected)")
    if base.resolve() == folder.resolve():
        raise ValueError(f"base: {base} is the folder being written")
    files = {}
    for split in SPLITS:
        for image in sorted((base / split).glob("*.jpg")):
            match = _NAME.match(image.name)
            if not match:
                raise ValueError(f"base: {image.name} is not a Market-1501 name (PPPP_cCsS_FFFFFF_BB.jpg)")
            files[image] = (int(match.group(1)), int(match.group(2)))
    return files


def random_family(rng: np.random.Generator) -> StyleFamily:
    """Camera style ranges from mild to strong, a backdrop kind and a clothing palette, drawn at random."""
    return StyleFamily(
        cast=_span(rng, 0.0, 0.5, 0.3),
        brightness=_span(rng, 0.6, 1.15, 0.3),
        contrast=_span(rng, 0.65, 1.3, 0.3),
        gamma=_span(rng, 0.8, 1.35, 0.3),
        saturation=_span(rng, 0.6, 1.25, 0.3),
        blur=_span(rng, 0.0, 0.9, 0.4),
        noise=_span(rng, 0.0, 0.05, 0.4),
        quality=_span(rng, 35, 95, 0.4),
        resolution=(1.0, 1.0) if rng.random() < 0.5 else _span(rng, 0.4, 1.0, 0.5),
        background=str(rng.choice(["street", "indoor"])),
        palette=str(rng.choice(["bright", "muted"])),
        hue_spread=round(float(rng.uniform(0.1, 1.0)), 3),
        shared_backdrops=bool(rng.random() < 0.5),
    )


def random_figure(rng: np.random.Generator) -> FigureStyle:
    """Figure proportions and shading from continuous ranges that cover the named presets' span."""
    return FigureStyle(
        width=round(float(rng.uniform(0.7, 1.35)), 3),
        head=round(float(rng.uniform(0.85, 1.45)), 3),
        shading=round(float(rng.uniform(0.0, 1.0)), 3),
    )


def generate_mixed_source(
    out: str | Path,
    parts: int = 8,
    identities: int = 12,
    cameras: tuple[int, int] = (2, 4),
    images_per_camera: int = 3,
    height: int = 64,
    width: int = 32,
    seed: int = 0,
    base: str | Path | None = None,
) -> dict:
    """Render `parts` randomly styled parts of `identities` people each (the first half of each part trains),
    seen by a random number of cameras in `cameras` (inclusive), into `out`/source; returns its metadata.
    `base`: a Market-1501 folder (e.g. the tuned pair's source) whose images are copied in first, unchanged; the
    parts' identities then start at the next hundred above its largest and their cameras after its."""
    if parts < 1 or identities < 2 or not 2 <= cameras[0] <= cameras[1] or images_per_camera < 1 or seed < 0:
        raise ValueError(
            f"parts >= 1, identities >= 2, 2 <= cameras[0] <= cameras[1], images_per_camera >= 1 and seed >= 0 "
            f"expected, got {parts}, {identities}, {cameras}, {images_per_camera}, {seed}"
        )
    out = Path(out)
    folder = out / "source"
    base_files = _market_files(Path(base), folder) if base is not None else {}
    pid_offset = 100 * math.ceil((max((p for p, _ in base_files.values()), default=-1) + 1) / 100)
    n_cameras = max((c for _, c in base_files.values()), default=0)
    if n_cameras + cameras[1] * parts > 99:
        raise ValueError(f"cameras, parts: at most 99 cameras in all, got up to {n_cameras} + {cameras[1]} x {parts}")
    (folder / "meta.json").unlink(missing_ok=True)
    staging = out / ".mixed_source_parts"
    shutil.rmtree(staging, ignore_errors=True)
    for split in SPLITS:
        shutil.rmtree(folder / split, ignore_errors=True)
        (folder / split).mkdir(parents=True)
    for image in base_files:
        shutil.copyfile(image, folder / image.parent.name / image.name)
    rng = np.random.default_rng([seed, 77])
    meta_parts = []
    for p in range(parts):
        part_seed = SEED_BASE + 100 * seed + p
        assert part_seed not in RESERVED_SEEDS
        family, figure, cams = random_family(rng), random_figure(rng), int(rng.integers(cameras[0], cameras[1] + 1))
        meta = generate_domain(
            staging / str(p), family, identities=identities, cameras=cams, images_per_camera=images_per_camera,
            height=height, width=width, seed=part_seed, stream=0, figure=figure,
        )  # fmt: skip
        for split in SPLITS:  # renumber: identities after the previous parts', cameras likewise
            for image in sorted((staging / str(p) / split).glob("*.jpg")):
                pid, cam, frame = (int(v) for v in _NAME.match(image.name).groups())
                name = market_name(pid_offset + p * identities + pid, n_cameras + cam, frame)
                image.rename(folder / split / name)
        meta_parts.append({k: meta[k] for k in ("seed", "cameras", "camera_styles", "figure", "background", "palette")})
        n_cameras += cams
    shutil.rmtree(staging)
    files = {s: [f.name for f in (folder / s).glob("*.jpg")] for s in SPLITS}
    meta = {
        "format": "market1501",
        "domain": "source",
        "mixed_source_seed": seed,
        "base": str(base) if base is not None else None,
        "identities": parts * identities + len({pid for pid, _ in base_files.values()}),
        "cameras": n_cameras,
        "height": height,
        "width": width,
        "splits": {s: {"images": len(files[s]), "ids": len({f[:4] for f in files[s]})} for s in SPLITS},
        "parts": meta_parts,
    }
    write_bytes_atomic(folder / "meta.json", json.dumps(meta, indent=1).encode())
    return meta


def main(argv=None) -> int:
    p = OneLineParser(name_errors=False, prog="python -m reid.data.mixed_source", description=__doc__.split("\n")[0])
    add_output_options(p)
    p.add_argument("--parts", type=int, default=8, help="randomly styled parts")
    p.add_argument("--identities", type=int, default=12, help="per part; the first half of each part trains")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base", type=Path, help="a Market-1501 folder copied in first (e.g. DIR/source of the tuned pair)")
    args = p.parse_args(argv)
    return run_generator(
        args,
        lambda: {
            "source": generate_mixed_source(
                args.out,
                args.parts,
                args.identities,
                height=args.height,
                width=args.width,
                seed=args.seed,
                base=args.base,
            )
        },
    )


if __name__ == "__main__":
    sys.exit(main())
