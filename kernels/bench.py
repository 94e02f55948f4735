"""Benchmark every attention kind: forward and forward+backward time, peak memory and achieved
throughput, beside torch SDPA measured in the same run.

    python -m kernels.bench --device cpu               # B=1 H=6 D=64, N in {196, 784, 3136}, fp32
    python -m kernels.bench --quick                    # a seconds-long subset
    python -m kernels.bench --device cuda --suite full # correctness check on the GPU, then B=8 H=12 D=64 bf16
    python -m kernels.bench --device cuda --suite peers # beside SDPA flash/cuDNN, fla and our reference, with targets

Prints tables and writes <out>/kernels-<device>-<suite>.json and .png. Throughput is judged against
the copy bandwidth and matmul rate measured on the same device in the same run: TFLOP/s for the
kinds with a weight per (query, key) (softmax, sigmoid, local), TB/s for the linear kinds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from common.files import write_bytes_atomic

from . import KINDS, attention
from .memory import peak_memory
from .registry import KIND_TABLE

SDPA = "sdpa"
CAUSAL_KINDS = tuple(kind for kind, spec in KIND_TABLE.items() if spec.causal)
QUADRATIC_KINDS = (*(kind for kind, spec in KIND_TABLE.items() if spec.quadratic), SDPA)  # TFLOP/s; the rest TB/s
LOCAL_BLOCK = 64


@dataclass(frozen=True)
class Suite:
    batch: int
    heads: int
    dim: int
    seq: tuple[int, ...]
    dtype: str
    warmup: int
    repeats: int
    backend: str = "auto"
    check: bool = False


SUITES = {
    "quick": Suite(1, 6, 64, (196, 784), "float32", 1, 3),
    "default": Suite(1, 6, 64, (196, 784, 3136), "float32", 2, 7),
    "full": Suite(8, 12, 64, (196, 1024, 3136, 16384), "bfloat16", 3, 20, backend="triton", check=True),
    # ours beside SDPA, flash-linear-attention and our reference (kernels/bench_peers.py)
    "peers": Suite(8, 12, 64, (1024, 4096, 16384), "bfloat16", 3, 20, backend="triton"),
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
    fwd_tflops: float | None = None
    fwd_tbps: float | None = None
    fwd_roofline: float | None = None  # fraction of the measured matmul rate (quadratic) or copy bandwidth


# ---------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, device: torch.device, warmup: int, repeats: int) -> float:
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


def _sdpa_context(device: torch.device):
    """SDPA's FlashAttention backend on CUDA (the baseline the targets name); the default elsewhere."""
    if device.type == "cuda":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION])
    return contextlib.nullcontext()


def _inputs(kind: str, n: int, suite: Suite, device: torch.device, seed: int = 0):
    dtype = getattr(torch, suite.dtype)
    g = torch.Generator(device="cpu").manual_seed(seed)
    shape = (suite.batch, suite.heads, n, suite.dim)
    q, k, v = (torch.randn(shape, generator=g) for _ in range(3))
    if kind == "soft":  # SOFT's caller pre-scales q and k by D^-1/4
        q, k = q * suite.dim**-0.25, k * suite.dim**-0.25
    grad = torch.randn(shape, generator=g)
    q, k, v, grad = (t.to(device=device, dtype=dtype) for t in (q, k, v, grad))
    return q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), grad


def measure(kind: str, causal: bool, n: int, suite: Suite, device: torch.device) -> Row:
    q, k, v, grad = _inputs(kind, n, suite, device)
    options = {"block_size": LOCAL_BLOCK} if kind == "local" else {}

    def forward():
        if kind == SDPA:
            with _sdpa_context(device):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return attention(q, k, v, kind, causal=causal, backend=suite.backend, **options)

    def no_grad_forward():
        with torch.no_grad():
            forward()

    def forward_backward():
        q.grad = k.grad = v.grad = None
        forward().backward(grad)

    fwd = median_ms(no_grad_forward, device, suite.warmup, suite.repeats)
    fwd_bwd = median_ms(forward_backward, device, suite.warmup, suite.repeats)
    with peak_memory(device) as fwd_peak:
        no_grad_forward()
    with peak_memory(device) as fwd_bwd_peak:
        forward_backward()
    return Row(kind, causal, n, fwd, fwd_bwd, fwd_peak["mib"], fwd_bwd_peak["mib"])


# ---------------------------------------------------------------- work models and roofline


def forward_flops(kind: str, n: int, suite: Suite, causal: bool) -> float:
    """Matmul FLOPs of one forward pass: 4·N·N'·D for the quadratic kinds (N' the keys each query sees),
    4·N·D·Dv for the linear ones (build the state, apply it)."""
    bh, d = suite.batch * suite.heads, suite.dim
    if kind in QUADRATIC_KINDS:
        keys = min(LOCAL_BLOCK, n) if kind == "local" else n
        return 4.0 * bh * n * keys * d * (0.5 if causal and kind != "local" else 1.0)
    return 4.0 * bh * n * d * d


def forward_bytes(n: int, suite: Suite) -> float:
    """Least HBM traffic of a forward pass: read q, k, v and write o once."""
    return 4.0 * suite.batch * suite.heads * n * suite.dim * torch.finfo(getattr(torch, suite.dtype)).bits / 8


def measure_roofline(device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    """Copy bandwidth (read + write bytes per second) and dense matmul rate on this device."""
    numel = (256 if device.type == "cuda" else 32) * 2**20 // 4
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    copy_ms = median_ms(lambda: dst.copy_(src), device, 3, 10)
    size = 8192 if device.type == "cuda" else 1024
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    mm_ms = median_ms(lambda: a @ b, device, 3, 10)
    return {"copy_tbps": 2 * src.numel() * 4 / copy_ms / 1e9, "matmul_tflops": 2 * size**3 / mm_ms / 1e9}


def add_throughput(rows: list[Row], suite: Suite, roofline: dict[str, float]) -> None:
    for r in rows:
        r.fwd_tflops = forward_flops(r.kind, r.n, suite, r.causal) / r.fwd_ms / 1e9
        r.fwd_tbps = forward_bytes(r.n, suite) / r.fwd_ms / 1e9
        if r.kind in QUADRATIC_KINDS:
            r.fwd_roofline = r.fwd_tflops / roofline["matmul_tflops"]
        else:
            r.fwd_roofline = r.fwd_tbps / roofline["copy_tbps"]


def evaluate_targets(rows: list[Row]) -> list[dict]:
    """The fused kernels' GPU targets (issue: Triton kernels), each with the numbers it was judged on."""
    targets = []
    by = {(r.kind, r.n): r for r in rows if not r.causal}
    sizes = sorted({r.n for r in rows})
    for n in sizes:
        sdpa = by.get((SDPA, n))
        if sdpa is None:
            continue
        if n >= 1024 and (r := by.get(("sigmoid", n))):
            speedup = sdpa.fwd_ms / r.fwd_ms
            targets.append({"target": f"sigmoid forward >= 1.1x SDPA at N={n}", "value": speedup, "ok": speedup >= 1.1})
        if r := by.get(("softmax", n)):
            speedup = sdpa.fwd_ms / r.fwd_ms
            targets.append({"target": f"softmax forward >= 0.9x SDPA at N={n}", "value": speedup, "ok": speedup >= 0.9})
        for kind in ("nala", "mala", "norm", "soft", "lightning"):
            if n >= 1024 and (r := by.get((kind, n))):
                speedup = sdpa.fwd_ms / r.fwd_ms
                targets.append(
                    {"target": f"{kind} forward faster than SDPA at N={n}", "value": speedup, "ok": speedup > 1.0}
                )
    largest = max(sizes)
    for kind in ("nala", "mala", "norm", "soft"):
        if r := by.get((kind, largest)):
            targets.append(
                {
                    "target": f"{kind} >= 70% of copy bandwidth at N={largest}",
                    "value": r.fwd_roofline,
                    "ok": r.fwd_roofline >= 0.7,
                }
            )
    return targets


# ---------------------------------------------------------------- correctness on the device


def check_kinds(kinds, device: torch.device, backend: str, dim: int, dtype: str) -> list[dict]:
    """Each kind on `backend` against the float64 reference at a small shape: out, dq, dk, dv."""
    results = []
    tolerance = 1e-3 if dtype == "float32" else 2e-2
    small = Suite(2, 4, dim, (257,), dtype, 0, 1)
    for kind in kinds:
        for causal in (False, True) if kind in CAUSAL_KINDS else (False,):
            q, k, v, grad = _inputs(kind, 257, small, device, seed=1)
            got, ref = [], []
            try:
                for path, store in ((backend, got), ("reference", ref)):
                    leaves = [
                        t.detach().to(torch.float64 if path == "reference" else t.dtype).requires_grad_()
                        for t in (q, k, v)
                    ]
                    out = attention(*leaves, kind, causal=causal, backend=path)
                    out.backward(grad.to(out.dtype))
                    store.extend([out.detach()] + [t.grad for t in leaves])
            except Exception as error:  # one broken kind must not hide the others' results
                results.append({"kind": kind, "causal": causal, "dtype": dtype, "error": _one_line(error), "ok": False})
                continue
            errors = {name: _rel_rms(r, g) for name, r, g in zip(("out", "dq", "dk", "dv"), ref, got, strict=True)}
            ok = max(errors.values()) < tolerance  # NaN compares False, so it fails
            results.append({"kind": kind, "causal": causal, "dtype": dtype, **errors, "ok": ok})
    return results


def _one_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"[:300]


def _rel_rms(ref: torch.Tensor, got: torch.Tensor) -> float:
    ref, got = ref.double(), got.double()
    return ((ref - got).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt().clamp_min(1e-12)).item()


# ---------------------------------------------------------------- output


def format_table(rows: list[Row]) -> str:
    def num(x, fmt):
        return "-" if x is None else format(x, fmt)

    columns = [
        ("kind", 10),
        ("N", 6),
        ("fwd ms", 9),
        ("x SDPA", 7),
        ("fwd+bwd ms", 11),
        ("x SDPA", 7),
        ("fwd MiB", 8),
        ("f+b MiB", 8),
        ("TFLOP/s", 8),
        ("TB/s", 7),
        ("roof", 6),
    ]
    header = " ".join(f"{name:>{width}}" for name, width in columns)
    lines = [header, "-" * len(header)]
    for r in rows:
        name = r.kind + ("/c" if r.causal else "")
        values = [
            name,
            r.n,
            f"{r.fwd_ms:.2f}",
            num(r.fwd_vs_sdpa, ".2f"),
            f"{r.fwd_bwd_ms:.2f}",
            num(r.fwd_bwd_vs_sdpa, ".2f"),
            num(r.fwd_peak_mib, ".1f"),
            num(r.fwd_bwd_peak_mib, ".1f"),
            num(r.fwd_tflops, ".3f"),
            num(r.fwd_tbps, ".3f"),
            num(r.fwd_roofline, ".2f"),
        ]
        lines.append(" ".join(f"{v:>{w}}" for v, (_, w) in zip(values, columns, strict=True)))
    return "\n".join(lines)


def write_atomic(path: Path, data: bytes) -> None:
    """Write the bytes whole or not at all (common.files), making the folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)


def plot(rows: list[Row], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("fwd_ms", "forward (ms)"),
        ("fwd_bwd_ms", "forward + backward (ms)"),
        ("fwd_bwd_peak_mib", "peak memory, fwd+bwd (MiB)"),
        ("fwd_roofline", "forward, fraction of roofline"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(21, 4.8))
    names = sorted({(r.kind, r.causal) for r in rows}, key=lambda x: (x[0] != SDPA, x))
    for ax, (field, label) in zip(axes, panels, strict=True):
        for kind, causal in names:
            pts = [
                (r.n, getattr(r, field))
                for r in rows
                if (r.kind, r.causal) == (kind, causal) and (getattr(r, field) or 0) > 0
            ]  # log axes
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
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (then closed), for write_atomic."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def parse_device(name: str) -> torch.device:
    """--device value -> torch.device; ValueError with a one-line reason when it is not usable here."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"--device: not a device: {name!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "cpu"
    return f"{model} ({torch.get_num_threads()} threads)"


# ---------------------------------------------------------------- CLI


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--suite", choices=tuple(SUITES), default=None, help="default: 'default' ('quick' with --quick)")
    p.add_argument("--quick", action="store_true", help="seconds-long subset (same as --suite quick)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--causal", action="store_true", help="time the causal forms (kinds that have one)")
    p.add_argument("--backend", choices=("auto", "reference", "triton"), help="override the suite's backend")
    p.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="first check every kind against the float64 reference on this device",
    )
    p.add_argument("--seq", type=int, nargs="+", help="override the suite's token counts")
    p.add_argument("--batch", type=int, help="override the suite's batch size")
    p.add_argument("--heads", type=int, help="override the suite's head count")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), help="override the suite's dtype")
    p.add_argument("--repeats", type=int, help="override the suite's timed repeats (one warm-up call then)")
    p.add_argument(
        "--out", type=Path, default=Path("bench-out"), help="folder for the JSON and PNG (default: bench-out)"
    )
    return p.parse_args(argv)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        device = parse_device(args.device)
    except ValueError as error:
        return _fail(str(error))
    name = args.suite or ("quick" if args.quick else "default")
    overrides = {
        "seq": tuple(args.seq) if args.seq else None,
        "batch": args.batch,
        "heads": args.heads,
        "dtype": args.dtype,
        "backend": args.backend,
        "check": args.check,
        "repeats": args.repeats,
        "warmup": 1 if args.repeats else None,
    }
    suite = replace(SUITES[name], **{key: value for key, value in overrides.items() if value is not None})
    if min(suite.seq + (suite.batch, suite.heads, suite.repeats)) < 1:
        return _fail("--seq, --batch, --heads, --repeats: must be >= 1")
    if name == "peers":
        from .bench_peers import run_suite

        return run_suite(suite, device, args.out, device_name(device), kinds=args.kinds)
    kinds = [k for k in args.kinds if not args.causal or k in CAUSAL_KINDS]
    title = (
        f"kernels.bench {name}: {device_name(device)}, torch {torch.__version__}, {suite.dtype}, "
        f"B={suite.batch} H={suite.heads} D={suite.dim}, backend={suite.backend}"
    )
    print(title)

    checks = []
    if suite.check:
        checks = check_kinds(kinds, device, suite.backend, suite.dim, "float32")
        checks += check_kinds(kinds, device, suite.backend, suite.dim, suite.dtype) if suite.dtype != "float32" else []
        print("correctness against the float64 reference (relative RMS):")
        for c in checks:
            errs = c.get("error") or "  ".join(f"{key} {c[key]:.1e}" for key in ("out", "dq", "dk", "dv"))
            label = c["kind"] + ("/c" if c["causal"] else "")
            print(f"  {label:>12} {c['dtype']:>8}  {errs}  {'ok' if c['ok'] else 'FAIL'}")

    roofline = measure_roofline(device, getattr(torch, suite.dtype))
    print(f"roofline: copy {roofline['copy_tbps']:.3f} TB/s, matmul {roofline['matmul_tflops']:.2f} TFLOP/s")
    rows, failures = [], []
    for n in suite.seq:
        baseline = None
        for kind in (SDPA, *kinds):
            try:
                row = measure(kind, args.causal, n, suite, device)
            except Exception as error:  # e.g. out of memory at the largest N: record it, go on with the rest
                failures.append({"kind": kind, "n": n, "error": _one_line(error)})
                print(f"  {kind:>9} N={n:<6} failed: {failures[-1]['error']}", file=sys.stderr)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            if kind == SDPA:
                baseline = row
            elif baseline is not None:
                row.fwd_vs_sdpa = row.fwd_ms / baseline.fwd_ms
                row.fwd_bwd_vs_sdpa = row.fwd_bwd_ms / baseline.fwd_bwd_ms
            rows.append(row)
            print(f"  {kind:>9} N={n:<6} fwd {row.fwd_ms:9.2f} ms  fwd+bwd {row.fwd_bwd_ms:9.2f} ms", file=sys.stderr)
    add_throughput(rows, suite, roofline)
    print(format_table(rows))
    targets = evaluate_targets(rows) if device.type == "cuda" else []
    for t in targets:
        print(f"  target: {t['target']}: {t['value']:.2f} {'met' if t['ok'] else 'MISSED'}")

    stem = f"kernels-{device.type}-{name}" + ("-causal" if args.causal else "")
    result = {
        "title": title,
        "device": device_name(device),
        "torch": torch.__version__,
        "suite": asdict(suite),
        "causal": args.causal,
        "roofline": roofline,
        "checks": checks,
        "targets": targets,
        "failures": failures,
        "rows": [asdict(r) for r in rows],
        "notes": "ms are medians; x SDPA = time / SDPA time (below 1 is faster); memory is the peak RSS "
        "increase (CPU) or peak allocated increase (CUDA) in MiB; roof = TFLOP/s / matmul rate for "
        "softmax, sigmoid, local and SDPA, TB/s (q, k, v read and o written once) / copy bandwidth "
        "for the linear kinds",
    }
    write_atomic(args.out / f"{stem}.json", json.dumps(result, indent=2).encode())
    write_atomic(args.out / f"{stem}.png", plot(rows, title))
    print(f"wrote {args.out / stem}.json and .png")
    return 1 if failures or any(not c["ok"] for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
