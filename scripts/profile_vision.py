"""Where a lavit model's forward (or training step) spends its time outside kernels.attention, with torch.profiler.

    python scripts/profile_vision.py --kinds nala mala --res 224 --batch 2 [--train] [--device cuda]

Prints, per kind: the fastest of --runs steps, the time inside kernels.attention, the rest, the number of aten
calls (on a GPU each is at least one kernel launch) and the profiler's table sorted by self time.
"""

from __future__ import annotations

import argparse
import collections
import time

import timm
import torch
from torch.profiler import ProfilerActivity, profile

import kernels
import vision  # noqa: F401  (registers the models)

BOOKKEEPING = ("aten::empty", "aten::as_strided", "aten::view", "aten::detach", "aten::empty_strided")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="lavit_small_patch16_224")
    p.add_argument("--kinds", nargs="+", default=["nala", "mala"])
    p.add_argument("--res", type=int, default=224)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--train", action="store_true", help="forward + backward instead of an inference forward")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier numbers on a shared machine)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    inside = [0.0]
    attention = kernels.attention

    def timed_attention(*a, **kw):
        _sync(device)
        start = time.perf_counter()
        out = attention(*a, **kw)
        _sync(device)
        inside[0] += time.perf_counter() - start
        return out

    kernels.attention = timed_attention  # the layers call kernels.attention through the module
    for kind in args.kinds:
        profile_kind(args, kind, device, inside)


def profile_kind(args: argparse.Namespace, kind: str, device: torch.device, inside: list[float]) -> None:
    torch.manual_seed(0)
    model = timm.create_model(args.model, attn_kind=kind, rope=True, img_size=args.res).to(device)
    model.train(args.train)
    images = torch.randn(args.batch, 3, args.res, args.res, device=device)

    def step():
        if args.train:
            model(images).sum().backward()
        else:
            with torch.inference_mode():
                model(images)

    step()
    best = (float("inf"), 0.0)
    for _ in range(args.runs):
        inside[0] = 0.0
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        best = min(best, (time.perf_counter() - start, inside[0]))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
    calls = collections.Counter(
        {e.key: e.count for e in prof.key_averages() if e.key.startswith("aten::") and e.key not in BOOKKEEPING}
    )
    total, attn = best
    print(
        f"== {args.model} {kind} {'train step' if args.train else 'inference'} {args.res}² batch {args.batch}: "
        f"{total * 1e3:.1f} ms, inside kernels.attention {attn * 1e3:.1f} ms, "
        f"outside {(total - attn) * 1e3:.1f} ms; {sum(calls.values())} aten calls (copy_ {calls['aten::copy_']}, "
        f"cat {calls['aten::cat']}, sin {calls['aten::sin']}, constant_pad_nd {calls['aten::constant_pad_nd']})"
    )
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=15))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
