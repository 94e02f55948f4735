"""Benchmark every attention kind: forward and forward+backward time and peak memory, beside SDPA.

    python -m kernels.bench --device cpu            # B=1 H=6 D=64, N in {196, 784, 3136}
    python -m kernels.bench --quick                 # a seconds-long subset
    python -m kernels.bench --device cuda --suite full

Prints a table and writes <out>/kernels-<device>-<suite>.json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import KINDS, attention
from .memory import peak_memory

SDPA = "sdpa"
CAUSAL_KINDS = ("softmax", "sigmoid", "norm", "lightning", "local")


@dataclass(frozen=True)
class Suite:
    batch: int
    heads: int
    dim: int
    seq: tuple[int, ...]
    dtype: str
    warmup: int
    repeats: int


SUITES = {
    "quick": Suite(1, 6, 64, (196, 784), "float32", 1, 3),
    "default": Suite(1, 6, 64, (196, 784, 3136), "float32", 2, 7),
    "full": Suite(8, 12, 64, (196, 1024, 3136, 16384), "bfloat16", 3, 20),
}


@dataclass
class Row:
    kind: str
    causal: bool
    n: int
    fwd_ms: float
    fwd_bwd_ms: float
    fwd_peak_mib: float | None
    fwd_bwd_peak_mib: float | None
    fwd_vs_sdpa: float | None = None
    fwd_bwd_vs_sdpa: float | None = None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(kind: str, causal: bool, n: int, suite: Suite, device: torch.device, backend: str) -> Row:
    dtype = getattr(torch, suite.dtype)
    g = torch.Generator(device="cpu").manual_seed(0)
    shape = (suite.batch, suite.heads, n, suite.dim)
    q, k, v = (torch.randn(shape, generator=g).to(device=device, dtype=dtype).requires_grad_() for _ in range(3))
    if kind == "soft":
        q, k = (t.detach().mul(suite.dim**-0.25).requires_grad_() for t in (q, k))
    grad = torch.randn(shape, generator=g).to(device=device, dtype=dtype)

    def forward():
        if kind == SDPA:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return attention(q, k, v, kind, causal=causal, backend=backend)

    def no_grad_forward():
        with torch.no_grad():
            forward()

    def forward_backward():
        q.grad = k.grad = v.grad = None
        forward().backward(grad)

    fwd = _median_ms(no_grad_forward, device, suite.warmup, suite.repeats)
    fwd_bwd = _median_ms(forward_backward, device, suite.warmup, suite.repeats)
    with peak_memory(device) as fwd_peak:
        no_grad_forward()
    with peak_memory(device) as fwd_bwd_peak:
        forward_backward()
    return Row(kind, causal, n, fwd, fwd_bwd, fwd_peak["mib"], fwd_bwd_peak["mib"])


def run(kinds, suite: Suite, device: torch.device, backend: str, causal: bool) -> list[Row]:
    rows = []
    for n in suite.seq:
        baseline = measure(SDPA, causal, n, suite, device, backend)
        rows.append(baseline)
        for kind in kinds:
            row = measure(kind, causal, n, suite, device, backend)
            row.fwd_vs_sdpa = row.fwd_ms / baseline.fwd_ms
            row.fwd_bwd_vs_sdpa = row.fwd_bwd_ms / baseline.fwd_bwd_ms
            rows.append(row)
            print(f"  {kind:>9} N={n:<6} fwd {row.fwd_ms:9.2f} ms  fwd+bwd {row.fwd_bwd_ms:9.2f} ms", file=sys.stderr)
    return rows


def format_table(rows: list[Row]) -> str:
    def num(x, fmt):
        return "-" if x is None else format(x, fmt)

    columns = ("kind", 10), ("N", 6), ("fwd ms", 9), ("x SDPA", 7), ("fwd+bwd ms", 11), ("x SDPA", 7)
    header = " ".join(f"{name:>{width}}" for name, width in columns + (("fwd MiB", 8), ("f+b MiB", 8)))
    lines = [header, "-" * len(header)]
    for r in rows:
        name = r.kind + ("/c" if r.causal else "")
        lines.append(
            f"{name:>10} {r.n:>6} {r.fwd_ms:>9.2f} {num(r.fwd_vs_sdpa, '7.2f'):>7} {r.fwd_bwd_ms:>11.2f} "
            f"{num(r.fwd_bwd_vs_sdpa, '7.2f'):>7} {num(r.fwd_peak_mib, '8.1f'):>8} {num(r.fwd_bwd_peak_mib, '8.1f'):>8}"
        )
    return "\n".join(lines)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot(rows: list[Row], title: str) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    panels = [
        ("fwd_ms", "forward (ms)"),
        ("fwd_bwd_ms", "forward + backward (ms)"),
        ("fwd_bwd_peak_mib", "peak memory, fwd+bwd (MiB)"),
    ]
    names = sorted({(r.kind, r.causal) for r in rows}, key=lambda x: (x[0] != SDPA, x))
    for ax, (field, label) in zip(axes, panels, strict=True):
        for kind, causal in names:
            pts = [
                (r.n, getattr(r, field))
                for r in rows
                if (r.kind, r.causal) == (kind, causal) and (getattr(r, field) or 0) > 0  # log axes
            ]
            if pts:
                xs, ys = zip(*pts, strict=True)
                style = dict(color="black", linestyle="--", linewidth=2) if kind == SDPA else {}
                ax.plot(xs, ys, marker="o", label=kind + (" (causal)" if causal else ""), **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tokens N")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "cpu"
    return f"{model} ({torch.get_num_threads()} threads)"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--suite", choices=tuple(SUITES), default=None, help="default: 'default' (or 'quick' with --quick)")
    p.add_argument("--quick", action="store_true", help="seconds-long subset (same as --suite quick)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--causal", action="store_true", help="time the causal forms (kinds that have one)")
    p.add_argument("--backend", choices=("auto", "reference", "triton"), default="auto")
    p.add_argument("--seq", type=int, nargs="+", help="override the suite's token counts")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), help="override the suite's dtype")
    p.add_argument(
        "--out", type=Path, default=Path("bench-out"), help="folder for the JSON and PNG (default: bench-out)"
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        print(f"error: --device: not a device: {args.device!r}", file=sys.stderr)
        return 2
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device is available here", file=sys.stderr)
        return 2
    name = args.suite or ("quick" if args.quick else "default")
    suite = SUITES[name]
    if args.seq:
        if min(args.seq) < 1:
            print("error: --seq: token counts must be >= 1", file=sys.stderr)
            return 2
        suite = Suite(**{**asdict(suite), "seq": tuple(args.seq)})
    if args.dtype:
        suite = Suite(**{**asdict(suite), "dtype": args.dtype})
    kinds = [k for k in args.kinds if not args.causal or k in CAUSAL_KINDS]

    rows = run(kinds, suite, device, args.backend, args.causal)
    table = format_table(rows)
    title = (
        f"kernels.bench {name}: {device_name(device)}, torch {torch.__version__}, {suite.dtype}, "
        f"B={suite.batch} H={suite.heads} D={suite.dim}, backend={args.backend}"
    )
    print(title)
    print(table)
    stem = f"kernels-{device.type}-{name}" + ("-causal" if args.causal else "")
    result = {
        "title": title,
        "device": device_name(device),
        "torch": torch.__version__,
        "suite": asdict(suite),
        "backend": args.backend,
        "causal": args.causal,
        "rows": [asdict(r) for r in rows],
        "memory": "peak RSS increase (CPU) / peak allocated increase (CUDA), MiB",
    }
    _write_atomic(args.out / f"{stem}.json", json.dumps(result, indent=2).encode())
    _write_atomic(args.out / f"{stem}.png", plot(rows, title))
    print(f"wrote {args.out / stem}.json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
