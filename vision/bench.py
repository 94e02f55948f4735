"""Throughput of every backbone × attention kind: inference and training images/s at 224² and 448².

    python -m vision.bench                 # current device, every model and kind
    python -m vision.bench --quick         # seconds: lavit_tiny with two kinds at 224²
    python -m vision.bench --device cuda --suite e2e --out docs/bench   # ours beside timm's ViTs (bench_e2e.py)
    python -m vision.bench --device cpu --suite e2e --res 64 --batch 2  # the same, tiny enough for a CPU

Prints a table and writes <out>/vision-<device>.json and .png (e2e: vision-e2e-<device>.json and .png).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F

import vision  # noqa: F401  (registers the models)
from kernels.bench import device_name, figure_png, median_ms, parse_device, write_atomic

from . import bench_e2e

LAVIT_KINDS = ("softmax", "sigmoid", "nala", "mala", "norm", "lightning", "soft", "local")
HIERARCHICAL = ("nalaformer_t", "mala_t", "soft_tiny", "nalaformer_s")


@dataclass
class Result:
    model: str
    kind: str
    size: int
    params_m: float
    infer_img_s: float
    train_img_s: float


def _model_variants(models: list[str], kinds: list[str]):
    for name in models:
        if name.startswith("lavit_"):
            for kind in kinds:
                yield name, kind, {"attn_kind": kind}
        else:
            yield name, "preset", {}


def measure(name: str, kwargs: dict, size: int, batch: int, device: torch.device, repeats: int) -> Result | None:
    try:
        model = (
            timm.create_model(name, img_size=size, **kwargs)
            if name.startswith("lavit_")
            else timm.create_model(name, **kwargs)
        )
    except ValueError as error:
        print(f"skip {name} {kwargs}: {error}", file=sys.stderr)
        return None
    model = model.to(device)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def infer():
        with torch.inference_mode(), autocast:
            model(images)

    def train_step():
        with autocast:
            loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.eval()
    infer_ms = median_ms(infer, device, 1, repeats)
    model.train()
    train_ms = median_ms(train_step, device, 1, repeats)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return Result(name, kwargs.get("attn_kind", "preset"), size, params, batch / infer_ms * 1e3, batch / train_ms * 1e3)


def format_table(rows: list[Result]) -> str:
    header = f"{'model':>24} {'kind':>9} {'size':>5} {'params M':>9} {'infer img/s':>12} {'train img/s':>12}"
    lines = [header, "-" * len(header)]
    lines += [
        f"{r.model:>24} {r.kind:>9} {r.size:>5} {r.params_m:>9.1f} {r.infer_img_s:>12.1f} {r.train_img_s:>12.1f}"
        for r in rows
    ]
    return "\n".join(lines)


def plot(rows: list[Result], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r.size for r in rows})
    fig, axes = plt.subplots(len(sizes), 2, figsize=(16, 3 + 3.5 * len(sizes)), squeeze=False)
    for row_axes, size in zip(axes, sizes, strict=True):
        subset = [r for r in rows if r.size == size]
        labels = [f"{r.model.replace('_patch16_224', '')}\n{r.kind}" for r in subset]
        for ax, field, name in zip(
            row_axes, ("infer_img_s", "train_img_s"), ("inference", "training step"), strict=True
        ):
            ax.bar(range(len(subset)), [getattr(r, field) for r in subset], color="tab:blue")
            ax.set_xticks(range(len(subset)), labels, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel("images / s")
            ax.set_title(f"{name}, {size}²")
            ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vision.bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--suite", choices=("kinds", "e2e"), default="kinds", help="e2e: ours beside timm's ViTs")
    p.add_argument("--models", nargs="+", default=None, help="default: every model of the suite")
    p.add_argument("--kinds", nargs="+", choices=LAVIT_KINDS, default=list(LAVIT_KINDS), help="for the lavit models")
    p.add_argument("--sizes", nargs="+", type=int, default=[224, 448], help="kinds suite")
    p.add_argument("--res", nargs="+", type=int, default=None, help="e2e suite; default 224 448 896")
    p.add_argument("--batch", type=int, default=None, help="kinds: 64 on CUDA, 4 on the CPU; e2e: 128 / 32 / 8")
    p.add_argument("--compile", choices=("off", "on", "both"), default="both", help="e2e: eager, compiled or both")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="lavit_tiny with softmax and nala at 224² only")
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    args = p.parse_args(argv)
    try:
        device = parse_device(args.device)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.suite == "e2e":
        return main_e2e(args, device)
    args.models = args.models or ["lavit_tiny_patch16_224", *HIERARCHICAL]
    unknown = [m for m in args.models if m not in vision.list_models()]
    if unknown:
        print(f"error: --models: unknown {unknown}; choose from {vision.list_models()}", file=sys.stderr)
        return 2
    if args.quick:
        args.models, args.kinds, args.sizes, args.repeats = ["lavit_tiny_patch16_224"], ["softmax", "nala"], [224], 1
    batch = args.batch or (64 if device.type == "cuda" else 4)
    rows = []
    for size in args.sizes:
        for name, kind, kwargs in _model_variants(args.models, args.kinds):
            if size % 32:
                print(f"error: --sizes: {size} is not a multiple of 32", file=sys.stderr)
                return 2
            result = measure(name, kwargs, size, batch, device, args.repeats)
            if result:
                rows.append(result)
                print(
                    f"  {name} {kind} {size}: {result.infer_img_s:.1f} / {result.train_img_s:.1f} img/s",
                    file=sys.stderr,
                )
    title = f"vision.bench: {device_name(device)}, torch {torch.__version__}, batch {batch}"
    print(title)
    print(format_table(rows))
    stem = f"vision-{device.type}" + ("-quick" if args.quick else "")
    write_atomic(
        args.out / f"{stem}.json",
        json.dumps({"title": title, "batch": batch, "rows": [asdict(r) for r in rows]}, indent=2).encode(),
    )
    write_atomic(args.out / f"{stem}.png", plot(rows, title))
    print(f"wrote {args.out / stem}.json and .png")
    return 0


def main_e2e(args: argparse.Namespace, device: torch.device) -> int:
    models = args.models or list(bench_e2e.MODELS)
    unknown = [m for m in models if m not in bench_e2e.MODELS]
    if unknown:
        print(f"error: --models: {unknown} are not in the e2e suite {list(bench_e2e.MODELS)}", file=sys.stderr)
        return 2
    table = dict(bench_e2e.SIZES)
    sizes = [(res, table.get(res, 8)) for res in args.res] if args.res else list(bench_e2e.SIZES)
    if args.batch:
        sizes = [(res, args.batch) for res, _ in sizes]
    bad = [res for res, _ in sizes if res % 32]
    if bad or (args.batch is not None and args.batch < 1):
        print(f"error: --res: {bad} not a multiple of 32" if bad else "error: --batch: expected >= 1", file=sys.stderr)
        return 2
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    rows = bench_e2e.run_suite(device, models, args.kinds, sizes, modes, args.repeats)
    gpu = device_name(device)
    title = f"vision.bench e2e: {gpu}, torch {torch.__version__}" + (", bf16 autocast" if device.type == "cuda" else "")
    print(title)
    print(bench_e2e.format_table(rows))
    stem = args.out / f"vision-e2e-{device.type}"
    report = {"gpu": gpu, "torch": torch.__version__, "device": device.type, "title": title}
    write_atomic(
        stem.with_suffix(".json"), json.dumps({**report, "rows": [asdict(r) for r in rows]}, indent=2).encode()
    )
    write_atomic(stem.with_suffix(".png"), bench_e2e.plot(rows, title))
    print(f"wrote {stem}.json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
