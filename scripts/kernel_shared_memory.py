"""Shared memory each fused kernel launch asks for on a given NVIDIA architecture, without a GPU.

    python scripts/kernel_shared_memory.py [--arch 90] [--kinds nala mala ...] [--dims 128 128] [--dtype float32]

The launches the wrappers make (forward and backward) are recorded under Triton's interpreter, then compiled
for the target with Triton's own compiler (ptxas ships inside Triton), whose metadata holds the shared memory
the kernel needs. A kernel over the architecture's limit fails at launch with OutOfResources, so this finds
such launches on a CPU-only machine. Each line also gives the tensor-core instructions in the PTX (mma.sync and
wgmma together, then wgmma alone: Hopper's warpgroup form, which needs 64-row tiles), and the registers per
thread and spilled bytes ptxas reports. Exit code 1 when any launch is over the limit, or when a launch whose
products take 16-bit operands (DOT bf16 or fp16) has no tensor-core instruction
(SOFT's Newton–Schulz kernels multiply in fp32 on purpose).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Shared memory per block (opt-in maximum), from the CUDA programming guide's compute-capability table
LIMITS = {80: 166912, 86: 101376, 89: 101376, 90: 232448, 100: 232448, 120: 101376}
DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def record(kinds: list[str], d: int, dv: int, dtype: str, n: int, out: Path) -> None:
    """Run forward and backward of each kind through the Triton path with kernel launches recorded, not run."""
    import torch
    import triton.runtime.interpreter as interpreter
    from triton.runtime.jit import JITFunction

    import kernels
    from kernels.ops.common import triton_utils
    from kernels.registry import KIND_TABLE

    launches = {}

    def run(self, *args, grid, warmup, **kwargs):
        fn = JITFunction(self.fn)
        bound = dict(zip(fn.arg_names, args, strict=False)) | kwargs
        signature, constants = {}, {}
        for param in fn.params:
            value = bound.get(param.name, param.default)
            if param.is_constexpr:
                signature[param.name], constants[param.name] = "constexpr", value
            elif isinstance(value, torch.Tensor):
                signature[param.name] = "*" + DTYPES.get(str(value.dtype).removeprefix("torch."), "fp32")
            elif isinstance(value, bool):
                signature[param.name] = "i1"
            elif isinstance(value, int):
                signature[param.name] = "i32" if abs(value) < 2**31 else "i64"
            else:
                signature[param.name] = "fp32"
        options = {k: kwargs[k] for k in ("num_warps", "num_stages") if k in kwargs}
        entry = [self.fn.__module__, self.fn.__name__, signature, constants, options]
        launches[json.dumps(entry, sort_keys=True)] = entry

    interpreter.InterpretedFunction.run = run
    # on a GPU bf16 tiles stay bf16; only the interpreter computes them in fp32
    triton_utils.fp32_tiles = lambda t: False
    blocked = []
    for kind in kinds:
        for causal in (False, True) if KIND_TABLE[kind].causal else (False,):
            q, k = (torch.randn(1, 2, n, d, dtype=getattr(torch, dtype), requires_grad=True) for _ in range(2))
            v = torch.randn(1, 2, n, dv, dtype=getattr(torch, dtype), requires_grad=True)
            try:
                kernels.explain(q, k, v, kind, causal=causal, backend="triton")
            except ValueError as error:  # too big for this GPU: backend="auto" takes the PyTorch path
                blocked.append(f"{kind}{' causal' if causal else ''}: {error}")
                continue
            kernels.attention(q, k, v, kind, causal=causal, backend="triton").sum().backward()
    out.write_text(json.dumps({"launches": list(launches.values()), "blocked": blocked}))


def ptxas_usage(ptx: str, arch: int) -> dict:
    """Registers per thread and spilled bytes, from ptxas (shipped inside Triton) run on the kernel's PTX."""
    from triton.backends.nvidia.compiler import get_ptxas

    ptxas = get_ptxas(arch).path
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(ptx)
        suffix = "a" if arch >= 90 else ""
        log = subprocess.run(
            [ptxas, "-v", f"--gpu-name=sm_{arch}{suffix}", str(src), "-o", str(Path(tmp) / "k.cubin")],
            capture_output=True,
            text=True,
        ).stderr
    registers = re.search(r"Used (\d+) registers", log)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    return {
        "registers": int(registers.group(1)) if registers else None,
        "spill_bytes": int(spills.group(1)) + int(spills.group(2)) if spills else None,
    }


def compile_all(entries: list, arch: int) -> list[dict]:
    import importlib

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    rows = []
    for module, name, signature, constants, options in entries:
        fn = getattr(importlib.import_module(module), name)
        kernel = triton.compile(
            ASTSource(fn, signature, constants),
            target=GPUTarget("cuda", arch, 32),
            options={"num_warps": 4, "num_stages": 3} | options,
        )
        shared = kernel.metadata.shared
        ptx = kernel.asm["ptx"]
        wgmma = len(re.findall(r"^\s*wgmma\.mma_async", ptx, re.M))
        mma_sync = len(re.findall(r"^\s*mma\.sync", ptx, re.M))
        blocks = {k: v for k, v in constants.items() if k.startswith("BLOCK")}
        flags = {k: v for k, v in constants.items() if not k.startswith("BLOCK")}
        uses_dot = "tt.dot" in kernel.asm["ttir"]
        row = {"kernel": name, "blocks": blocks, "flags": flags, "options": options, "shared": shared}
        rows.append(row | {"dots": uses_dot, "mma": wgmma + mma_sync, "wgmma": wgmma, **ptxas_usage(ptx, arch)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", type=int, default=90, choices=sorted(LIMITS))
    p.add_argument(
        "--kinds",
        nargs="+",
        help="kinds to compile (default: every kind with a fused kernel, from kernels/registry.py)",
    )
    p.add_argument("--dims", nargs=2, type=int, default=[128, 128], metavar=("D", "DV"))
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--tokens", type=int, default=70)
    p.add_argument("--record", type=Path, help=argparse.SUPPRESS)  # internal: the interpreter-side half
    a = p.parse_args(argv)
    if not a.kinds:
        from kernels.registry import KIND_TABLE

        a.kinds = [kind for kind, spec in KIND_TABLE.items() if spec.triton]
    if a.record:
        record(a.kinds, *a.dims, a.dtype, a.tokens, a.record)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "launches.json"
        # the wrappers pick their tiles for this much shared memory (kernels/ops/common/triton_utils.py)
        env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT), KERNELS_SHARED_MEMORY=str(LIMITS[a.arch]))
        args = [sys.executable, __file__, "--kinds", *a.kinds, "--dims", *map(str, a.dims), "--dtype", a.dtype]
        subprocess.run([*args, "--tokens", str(a.tokens), "--record", str(path)], env=env, check=True)
        recorded = json.loads(path.read_text())
    entries = recorded["launches"]
    limit = LIMITS[a.arch]
    over = no_mma = 0
    print(f"sm_{a.arch}: limit {limit} bytes; D={a.dims[0]} Dv={a.dims[1]} {a.dtype}")
    for reason in recorded["blocked"]:
        print(f"PyTorch path (the fused kernels are not launched): {reason}")
    for row in compile_all(entries, a.arch):
        flag = "OVER" if row["shared"] > limit else "ok"
        over += flag == "OVER"
        if row["flags"].get("DOT") in ("bf16", "fp16") and not row["mma"]:
            flag, no_mma = "NOTC", no_mma + 1  # 16-bit products that do not reach the tensor cores
        usage = (
            f"{row['shared']:7d} mma {row['mma']:3d} wgmma {row['wgmma']:3d} "
            f"regs {row['registers']:3d} spill {row['spill_bytes']:5d}"
        )
        print(f"{flag:4s} {usage} {row['kernel']:18s} {row['blocks']} {row['flags']} {row['options']}")
    print(f"{over} of {len(entries)} launches over the limit")
    if a.dtype != "float32":
        print(f"{no_mma} of {len(entries)} launches with 16-bit products but no tensor-core instruction")
    return 1 if over or no_mma else 0


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET") and "--record" not in sys.argv:
        # compiling needs Triton's real JIT, which the interpreter replaces at import time
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        sys.exit(subprocess.run([sys.executable, *sys.argv], env=env).returncode)
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
