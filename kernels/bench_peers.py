"""The peers suite of kernels.bench: our fused kernels beside what a user already has, timed in one process.

    python -m kernels.bench --device cuda --suite peers --out docs/bench

Implementations: `ours` (the fused Triton path), `reference` (our plain-PyTorch path, for the linear kinds),
`sdpa-flash` and `sdpa-cudnn` (torch SDPA's backends, softmax), `fla` (flash-linear-attention's chunked kernels
for causal lightning and causal norm, where the optional `fla-core` package imports). Writes
<out>/kernels-peers-<device>.json and .png and prints every target of the fused kernels, met or missed.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import attention
from .ops.lightning.reference import alibi_slopes
from .registry import KIND_TABLE

# flash-linear-attention's counterparts of our causal scans (same sums: decay exp(g_gamma) = exp(-slope), scale 1)
FLA_FORMS = {"lightning": "chunk_simple_gla", "norm": "chunk_linear_attn"}
LINEAR_KINDS = tuple(kind for kind, spec in KIND_TABLE.items() if not spec.quadratic)


@dataclass
class PeerRow:
    impl: str  # ours, reference, sdpa-flash, sdpa-cudnn, fla
    kind: str
    N: int
    causal: bool
    fwd_ms: float
    fwd_bwd_ms: float


def forms(kinds=None) -> list[tuple[str, bool]]:
    """Every kind (of `kinds`) with a fused kernel, non-causal and, where the kind has one, causal."""
    return [
        (kind, causal)
        for kind, spec in KIND_TABLE.items()
        if spec.triton and (kinds is None or kind in kinds)
        for causal in (False, True)[: 1 + spec.causal]
    ]


def time_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median milliseconds: triton.testing.do_bench on CUDA (it flushes the L2 between calls), wall clock elsewhere."""
    if device.type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    import time

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _sdpa(backend_name: str):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([getattr(SDPBackend, backend_name)])


def _fla():
    """flash-linear-attention's two functions, or the one-line reason they cannot be used here."""
    try:
        from fla.ops.linear_attn import chunk_linear_attn
        from fla.ops.simple_gla import chunk_simple_gla
    except Exception as error:  # not installed, or no GPU for its kernels
        return None, f"fla: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200]
    return {"lightning": chunk_simple_gla, "norm": chunk_linear_attn}, None


def implementations(device: torch.device, heads: int, interpreting: bool, kinds=None):
    """(impl, kind, causal, run) for every row of the suite, and the reasons some peers are missing.
    run(q, k, v) takes [B, H, N, D] tensors and returns [B, H, N, Dv]."""
    unavailable = []
    runs = []
    fused_here = device.type == "cuda" or interpreting
    for kind, causal in forms(kinds):
        if fused_here:
            runs.append(("ours", kind, causal, _ours(kind, causal, "triton")))
        if kind in LINEAR_KINDS:
            runs.append(("reference", kind, causal, _ours(kind, causal, "reference")))
    if not fused_here:
        unavailable.append(f"ours: tensors on {device}: the fused kernels run on CUDA (or under TRITON_INTERPRET=1)")
    if device.type == "cuda":
        for impl, backend in (("sdpa-flash", "FLASH_ATTENTION"), ("sdpa-cudnn", "CUDNN_ATTENTION")):
            for causal in (False, True):
                runs.append((impl, "softmax", causal, _sdpa_run(backend, causal)))
        fla, reason = _fla()
        if fla is None:
            unavailable.append(reason)
        else:
            slopes = torch.tensor(alibi_slopes(heads), device=device, dtype=torch.float32)
            runs.append(("fla", "lightning", True, _fla_run(fla["lightning"], g_gamma=-slopes, scale=1.0)))
            runs.append(("fla", "norm", True, _fla_run(fla["norm"], scale=1.0, normalize=False)))
    else:
        unavailable.append(f"sdpa-flash, sdpa-cudnn, fla: CUDA only (device {device})")
    return runs, unavailable


def _ours(kind: str, causal: bool, backend: str):
    def run(q, k, v):
        return attention(q, k, v, kind, causal=causal, backend=backend)

    return run


def _sdpa_run(backend: str, causal: bool):
    def run(q, k, v):
        with _sdpa(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return run


def _fla_run(fn, **options):
    """fla takes [B, T, H, D]: the transposes are views, as a model's projections would give."""

    def run(q, k, v):
        out, _ = fn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), **options)
        return out.transpose(1, 2)

    return run


def measure(run, kind: str, n: int, batch: int, heads: int, dim: int, dtype, device, warmup: int, repeats: int):
    g = torch.Generator().manual_seed(0)
    q, k, v, grad = (torch.randn(batch, heads, n, dim, generator=g) for _ in range(4))
    if kind == "soft":  # SOFT's caller pre-scales q and k by D^-1/4
        q, k = q * dim**-0.25, k * dim**-0.25
    q, k, v, grad = (t.to(device=device, dtype=dtype) for t in (q, k, v, grad))
    q, k, v = (t.requires_grad_() for t in (q, k, v))

    def forward():
        with torch.no_grad():
            run(q, k, v)

    def forward_backward():
        q.grad = k.grad = v.grad = None
        run(q, k, v).backward(grad)

    return time_ms(forward, device, warmup, repeats), time_ms(forward_backward, device, warmup, repeats)


# ---------------------------------------------------------------- targets


def io_floor_ms(n: int, batch: int, heads: int, dim: int, itemsize: int, copy_tbps: float) -> float:
    """Reading q, k, v and writing o once at the measured copy bandwidth."""
    return 4 * batch * heads * n * dim * itemsize / (copy_tbps * 1e12) * 1e3


def evaluate(rows: list[PeerRow], floor: Callable[[int], float]) -> list[dict]:
    """Every target of the fused kernels that these rows can judge: value, bound, met or not.
    Ratios are ours ÷ peer time unless the target says otherwise."""
    at = {(r.impl, r.kind, r.N, r.causal): r for r in rows}
    targets = []

    def add(name: str, n: int, value: float, bound: float, at_most: bool = True) -> None:
        ok = value <= bound if at_most else value >= bound
        targets.append({"target": name, "N": n, "value": value, "bound": bound, "at_most": at_most, "ok": ok})

    for n in sorted({r.N for r in rows}):
        flash = at.get(("sdpa-flash", "softmax", n, False))
        flash_causal = at.get(("sdpa-flash", "softmax", n, True))
        best_sdpa = [r for r in (flash, at.get(("sdpa-cudnn", "softmax", n, False))) if r]
        for kind, fla_kind in (("lightning", "lightning"), ("norm", "norm")):
            ours, fla = at.get(("ours", kind, n, True)), at.get(("fla", fla_kind, n, True))
            if ours and fla and n >= 4096:
                add(f"causal {kind} fwd / fla", n, ours.fwd_ms / fla.fwd_ms, 1.25)
                add(f"causal {kind} fwd+bwd / fla", n, ours.fwd_bwd_ms / fla.fwd_bwd_ms, 1.25)
            if ours and flash_causal and n >= 4096:
                add(f"causal {kind} fwd / SDPA flash causal", n, ours.fwd_ms / flash_causal.fwd_ms, 1.0)
                add(f"causal {kind} fwd+bwd / SDPA flash causal", n, ours.fwd_bwd_ms / flash_causal.fwd_bwd_ms, 1.0)
        for kind in ("nala", "mala", "norm"):
            ours, ref = at.get(("ours", kind, n, False)), at.get(("reference", kind, n, False))
            if ours and n == max(r.N for r in rows):
                add(f"{kind} fwd: share of the I/O floor", n, floor(n) / ours.fwd_ms, 0.5, at_most=False)
            if ours and ref and n >= 1024:
                add(f"{kind} fwd+bwd speed-up over our reference", n, ref.fwd_bwd_ms / ours.fwd_bwd_ms, 2.0, False)
        nala, mala = at.get(("ours", "nala", n, False)), at.get(("ours", "mala", n, False))
        if nala and mala:
            backward = (nala.fwd_bwd_ms - nala.fwd_ms) / max(mala.fwd_bwd_ms - mala.fwd_ms, 1e-9)
            add("nala bwd / mala bwd", n, backward, 1.5)
        if flash and n >= 4096:
            if sig := at.get(("ours", "sigmoid", n, False)):
                add("sigmoid fwd speed-up over SDPA flash softmax", n, flash.fwd_ms / sig.fwd_ms, 1.1, False)
            for kind in ("soft", "lightning"):
                if ours := at.get(("ours", kind, n, False)):
                    add(
                        f"{kind}{' two-sided' * (kind == 'lightning')} fwd / SDPA flash",
                        n,
                        ours.fwd_ms / flash.fwd_ms,
                        1.0,
                    )
        if best_sdpa and n >= 4096 and (soft := at.get(("ours", "softmax", n, False))):
            add("softmax fwd / best SDPA", n, soft.fwd_ms / min(r.fwd_ms for r in best_sdpa), 1.2)
        if flash and n <= 1024:
            for r in rows:
                if r.impl == "ours" and r.N == n and not r.causal:
                    add(f"{r.kind} fwd / SDPA flash (small N)", n, r.fwd_ms / flash.fwd_ms, 1.5)
    return targets


# ---------------------------------------------------------------- output


def format_targets(targets: list[dict]) -> str:
    lines = [f"{'target':52s} {'N':>6} {'value':>7} {'bound':>7}  result", "-" * 84]
    for t in targets:
        bound = f"{'<=' if t['at_most'] else '>='} {t['bound']:.2f}"
        lines.append(f"{t['target']:52s} {t['N']:>6} {t['value']:>7.2f} {bound:>7}  {'met' if t['ok'] else 'MISSED'}")
    met = sum(t["ok"] for t in targets)
    lines.append(f"{met} of {len(targets)} targets met")
    return "\n".join(lines)


def format_rows(rows: list[PeerRow]) -> str:
    lines = [f"{'impl':>11} {'kind':>10} {'N':>6} {'fwd ms':>9} {'fwd+bwd ms':>11}"]
    for r in rows:
        kind = r.kind + ("/c" if r.causal else "")
        lines.append(f"{r.impl:>11} {kind:>10} {r.N:>6} {r.fwd_ms:>9.3f} {r.fwd_bwd_ms:>11.3f}")
    return "\n".join(lines)


def plot(rows: list[PeerRow], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .bench import figure_png

    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5))
    series = sorted({(r.impl, r.kind, r.causal) for r in rows}, key=lambda s: (s[0] != "ours", s))
    kinds = sorted({kind for _, kind, _ in series})
    colours = {kind: plt.get_cmap("tab10")(i % 10) for i, kind in enumerate(kinds)}
    lines = {"ours": "-", "reference": ":", "sdpa-flash": "--", "sdpa-cudnn": "-.", "fla": (0, (5, 1))}
    for ax, field, label in zip(
        axes, ("fwd_ms", "fwd_bwd_ms"), ("forward (ms)", "forward + backward (ms)"), strict=True
    ):
        for impl, kind, causal in series:
            pts = sorted((r.N, getattr(r, field)) for r in rows if (r.impl, r.kind, r.causal) == (impl, kind, causal))
            xs, ys = zip(*pts, strict=True)
            style = {"linestyle": lines[impl], "marker": "s" if causal else "o", "color": colours[kind]}
            ax.plot(xs, ys, label=f"{impl} {kind}{' causal' if causal else ''}", **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tokens N")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def run_suite(suite, device: torch.device, out: Path, device_label: str, kinds=None) -> int:
    """Time every row, print the tables, write JSON and PNG; exit status 1 when a row failed to run."""
    import triton

    from .bench import measure_roofline, write_atomic
    from .ops.common.triton_utils import interpreting

    dtype = getattr(torch, suite.dtype)
    copy_tbps = measure_roofline(device, dtype)["copy_tbps"]
    runs, unavailable = implementations(device, suite.heads, interpreting(), kinds)
    rows, failures = [], []
    for n in suite.seq:
        for impl, kind, causal, run in runs:
            try:
                fwd, fwd_bwd = measure(
                    run, kind, n, suite.batch, suite.heads, suite.dim, dtype, device, suite.warmup, suite.repeats
                )
            except Exception as error:  # e.g. a peer's kernel that does not build here: recorded, the rest go on
                failures.append({"impl": impl, "kind": kind, "N": n, "causal": causal, "error": str(error)[:300]})
                print(f"  {impl} {kind} N={n} failed: {failures[-1]['error']}", file=sys.stderr)
                continue
            rows.append(PeerRow(impl, kind, n, causal, fwd, fwd_bwd))
            print(
                f"  {impl:>10} {kind:>9}{'/c' if causal else '  '} N={n:<6} {fwd:9.3f} {fwd_bwd:9.3f} ms",
                file=sys.stderr,
            )

    def floor(n: int) -> float:
        return io_floor_ms(n, suite.batch, suite.heads, suite.dim, dtype.itemsize, copy_tbps)

    targets = evaluate(rows, floor)
    title = (
        f"kernels.bench peers: {device_label}, torch {torch.__version__}, triton {triton.__version__}, "
        f"{suite.dtype}, B={suite.batch} H={suite.heads} D={suite.dim}, copy {copy_tbps:.3g} TB/s"
    )
    print(title)
    print(format_rows(rows))
    for reason in unavailable:
        print(f"not measured: {reason}")
    print(format_targets(targets))
    result = {
        "gpu": device_label,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "copy_TBps": copy_tbps,
        "dtype": suite.dtype,
        "batch": suite.batch,
        "heads": suite.heads,
        "dim": suite.dim,
        "rows": [asdict(r) for r in rows],
        "targets": targets,
        "unavailable": unavailable,
        "failures": failures,
        "notes": "ms are medians (triton.testing.do_bench on CUDA); ratios are ours / peer time unless the target "
        "name says speed-up or share; the I/O floor reads q, k, v and writes o once at the copy bandwidth",
    }
    stem = f"kernels-peers-{device.type}"
    write_atomic(out / f"{stem}.json", json.dumps(result, indent=2).encode())
    write_atomic(out / f"{stem}.png", plot(rows, title))
    print(f"wrote {out / stem}.json and .png")
    return 1 if failures else 0


__all__ = ["PeerRow", "evaluate", "forms", "implementations", "io_floor_ms", "run_suite"]
