"""Where NViST spends its time: encoder, decoder, field (token heads) and rendering, per image, with peak memory,
for the tiny and the paper-size configs on the current device.

    python -m nvs.bench [--device cuda] [--configs tiny full] [--size 128] [--out DIR]
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from common.cli import OneLineParser, print_error
from common.files import write_bytes_atomic, write_json_atomic
from kernels.bench import device_name, figure_png, median_ms, parse_device
from kernels.memory import peak_memory

from . import cameras
from .model.nvist import NViST, NViSTConfig, SceneCodes
from .weights import TINY

CONFIGS = {"tiny": TINY, "full": {}}


@dataclass
class Stage:
    config: str
    stage: str
    ms: float
    peak_mib: float | None


def profile(name: str, device: torch.device, size: int, repeats: int) -> list[Stage]:
    model = NViST(NViSTConfig(**CONFIGS[name])).eval().to(device)
    c = model.config
    image = torch.rand(1, 3, c.image_height, c.image_width, device=device)
    condition = torch.tensor([[c.default_distance, c.default_focal_ratio]], device=device)
    G = model.grid
    results = []
    with torch.inference_mode():
        tokens = model.encoder.forward_features((image - model.mean) / model.std)
        decoded = model.decoder(tokens, condition)
        codes = model.encode(image, condition)
        field = model.predict(image[0])
        poses = cameras.orbit_poses(1, c.default_distance)
        intrinsics = dict(
            fx=size * c.default_focal_ratio,
            fy=size * c.default_focal_ratio,
            cx=size / 2,
            cy=size / 2,
            width=size,
            height=size,
        )

        def heads():
            plane = model.plane_head(decoded[:, 1 : 1 + 3 * G * G])
            line = model.line_head(decoded[:, 1 + 3 * G * G :])
            return SceneCodes(plane, line, decoded[:, 0])

        stages = {
            "encoder": lambda: model.encoder.forward_features((image - model.mean) / model.std),
            "decoder": lambda: model.decoder(tokens, condition),
            "field": heads,
            f"render {size}x{size}": lambda: field.render(poses, **intrinsics),
            "total (one view)": lambda: model.predict(image[0]).render(poses, **intrinsics),
        }
        del codes
        for stage, fn in stages.items():
            ms = median_ms(fn, device, 1, repeats)
            with peak_memory(device) as peak:
                fn()
            results.append(Stage(name, stage, ms, peak["mib"]))
    return results


def plot(rows: list[Stage], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = sorted({r.config for r in rows})
    fig, axes = plt.subplots(1, len(configs), figsize=(6 * len(configs), 4), squeeze=False)
    for ax, config in zip(axes[0], configs, strict=True):
        subset = [r for r in rows if r.config == config]
        ax.barh([r.stage for r in subset], [r.ms for r in subset], color="tab:green")
        ax.set_xlabel("ms per image")
        ax.set_title(config)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def main(argv=None) -> int:
    p = OneLineParser(name_errors=False, prog="python -m nvs.bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=list(CONFIGS))
    p.add_argument("--size", type=int, default=128, help="rendered view size in pixels")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    args = p.parse_args(argv)
    try:
        device = parse_device(args.device)
    except ValueError as error:
        return print_error(str(error))
    if args.size < 1:
        return print_error("--size: must be >= 1")
    rows = [stage for name in args.configs for stage in profile(name, device, args.size, args.repeats)]
    title = f"nvs.bench: {device_name(device)}, torch {torch.__version__}"
    print(title)
    print(f"{'config':>6} {'stage':>20} {'ms/image':>10} {'peak MiB':>9}")
    for r in rows:
        peak = "-" if r.peak_mib is None else f"{r.peak_mib:.1f}"
        print(f"{r.config:>6} {r.stage:>20} {r.ms:>10.1f} {peak:>9}")
    stem = f"nvs-{device.type}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / f"{stem}.json", {"title": title, "rows": [asdict(r) for r in rows]})
    write_bytes_atomic(args.out / f"{stem}.png", plot(rows, title))
    print(f"wrote {args.out / stem}.json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
