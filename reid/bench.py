"""Time re-id evaluation (CMC/mAP/mINP) and k-reciprocal re-ranking on synthetic features.

    python -m reid.bench --out docs/bench                     # evaluate up to 20000 x 20000; re-rank up to Market size
    python -m reid.bench --eval-sizes 300 --rerank-sizes 50x200 --out /tmp/b   # seconds-long smoke run

Features are identity centres plus noise (about 15 images per identity, 6 cameras), so the metrics are neither
0 nor 1. Writes <out>/reid-eval.json and .png; times are medians over --repeats runs on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common.cli import OneLineParser
from common.files import write_bytes_atomic, write_json_atomic
from kernels.bench import device_name, figure_png, median_ms

from .evaluation import evaluate, pairwise_distance
from .re_ranking import re_ranking

CPU = torch.device("cpu")


def synthetic(n: int, seed: int, dim: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n float32 features of n // 15 identities, with identity and camera labels."""
    g = np.random.default_rng(seed)
    ids = max(2, n // 15)
    pid = g.integers(0, ids, n)
    cam = g.integers(0, 6, n)
    x = g.normal(size=(ids, dim))[pid] + 1.2 * g.normal(size=(n, dim))
    return x.astype(np.float32), pid, cam


def time_evaluate(n: int, repeats: int) -> dict:
    """Query and gallery of n images each (disjoint draws of the same identities)."""
    x, pid, cam = synthetic(2 * n, seed=n)
    start = time.perf_counter()
    dist = pairwise_distance(x[:n], x[n:], "euclidean")
    distance_ms = (time.perf_counter() - start) * 1e3
    args = (dist, pid[:n], pid[n:], cam[:n], cam[n:])
    result = evaluate(*args)
    ms = median_ms(lambda: evaluate(*args), CPU, 0, repeats)
    return {
        "num_query": n,
        "num_gallery": n,
        "evaluate_ms": ms,
        "pairwise_distance_ms": distance_ms,
        "mAP": result["mAP"],
        "rank1": float(result["cmc"][0]),
        "mINP": result["mINP"],
    }


def time_re_ranking(nq: int, ng: int, repeats: int) -> dict:
    x, pid, cam = synthetic(nq + ng, seed=nq + ng)
    q, g = x[:nq], x[nq:]
    q_g, q_q, g_g = (pairwise_distance(a, b, "sqeuclidean") for a, b in ((q, g), (q, q), (g, g)))
    labels = (pid[:nq], pid[nq:], cam[:nq], cam[nq:])
    final = re_ranking(q_g, q_q, g_g)
    ms = median_ms(lambda: re_ranking(q_g, q_q, g_g), CPU, 0, repeats)
    return {
        "num_query": nq,
        "num_gallery": ng,
        "re_ranking_ms": ms,
        "mAP_before": evaluate(q_g, *labels)["mAP"],
        "mAP_after": evaluate(final, *labels)["mAP"],
    }


def plot(evals: list[dict], reranks: list[dict], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    if evals:
        n = [r["num_query"] for r in evals]
        axes[0].plot(n, [r["evaluate_ms"] / 1e3 for r in evals], marker="o", label="evaluate")
        axes[0].plot(n, [r["pairwise_distance_ms"] / 1e3 for r in evals], marker="s", label="pairwise_distance")
    axes[0].set_xlabel("queries = gallery images")
    axes[0].set_title("evaluation (Market-1501 protocol)")
    if reranks:
        total = [r["num_query"] + r["num_gallery"] for r in reranks]
        axes[1].plot(total, [r["re_ranking_ms"] / 1e3 for r in reranks], marker="o", label="re_ranking")
        for t, r in zip(total, reranks, strict=True):
            axes[1].annotate(f"{r['num_query']}x{r['num_gallery']}", (t, r["re_ranking_ms"] / 1e3), fontsize=8)
    axes[1].set_xlabel("queries + gallery images")
    axes[1].set_title("k-reciprocal re-ranking (k1 20, k2 6)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def _size_pair(text: str) -> tuple[int, int]:
    try:
        nq, ng = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected QUERYxGALLERY such as 2000x10000, got {text!r}") from error
    if min(nq, ng) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1, got {text!r}")
    return nq, ng


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from error
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m reid.bench", description=__doc__.split("\n")[0])
    p.add_argument("--eval-sizes", type=_positive, nargs="*", default=[2000, 5000, 10000, 20000])
    p.add_argument(
        "--rerank-sizes", type=_size_pair, nargs="*", default=[(500, 2500), (1000, 5000), (2000, 10000), (3368, 15913)]
    )
    p.add_argument("--repeats", type=_positive, default=1, help="timed runs per size, median reported (default 1)")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="folder for the JSON and PNG")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = device_name(CPU)
    title = f"reid.bench: {device}, torch {torch.__version__}, numpy {np.__version__}"
    print(title)
    evals, reranks = [], []
    for n in args.eval_sizes:
        evals.append(row := time_evaluate(n, args.repeats))
        print(
            f"  evaluate {n}x{n}: {row['evaluate_ms'] / 1e3:.2f} s (distances {row['pairwise_distance_ms'] / 1e3:.2f}"
            f" s), mAP {row['mAP']:.3f}, rank-1 {row['rank1']:.3f}, mINP {row['mINP']:.3f}",
            flush=True,
        )
    for nq, ng in args.rerank_sizes:
        reranks.append(row := time_re_ranking(nq, ng, args.repeats))
        print(
            f"  re_ranking {nq}x{ng}: {row['re_ranking_ms'] / 1e3:.2f} s, "
            f"mAP {row['mAP_before']:.3f} -> {row['mAP_after']:.3f}",
            flush=True,
        )
    result = {
        "title": title,
        "device": device,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "repeats": args.repeats,
        "evaluate": evals,
        "re_ranking": reranks,
        "notes": "ms are medians over `repeats` runs after one untimed run; evaluate uses euclidean distances, "
        "re_ranking squared euclidean (as torchreid/CORE-ReID feed it) with k1 20, k2 6, lambda 0.3; "
        "pairwise_distance_ms is one untimed-warmup-free run",
    }
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "reid-eval.json", result)
    write_bytes_atomic(out / "reid-eval.png", plot(evals, reranks, title))
    print(f"wrote {out / 'reid-eval.json'} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
