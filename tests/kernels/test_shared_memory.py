"""The fused kernels' launches fit in the shared memory of an H100, an A100 and an RTX 4090, checked without a GPU.

On an H200 (2026-11-28) nala's backward at D = Dv = 128 failed at launch: Triton's default tiling asked for
379,008 bytes of shared memory, over the 232,448 an sm_90 block may have. scripts/kernel_shared_memory.py
records the launches the wrappers make for a given GPU and compiles them for it with Triton's own compiler,
which reported the same 379,008 bytes for the old tiling. Before the tiles were sized for the GPU at hand, the
same script found 23 of 40 fp32 launches at D = 64 over an RTX 4090's 101,376 bytes, and fp32 attention's
dK/dV kernel (231,424 bytes at D = 64) and nala's backward (231,424 at D = 128, Dv = 64) over an A100's 166,912.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from kernels.registry import KIND_TABLE

ROOT = Path(__file__).resolve().parents[2]
ALL_KINDS = [kind for kind, spec in KIND_TABLE.items() if spec.triton]
CASES = {
    "h100-linear-d128": (90, ["nala", "mala"], (128, 128)),
    "rtx4090-all-d64": (89, ALL_KINDS, (64, 64)),
    "a100-softmax-d64": (80, ["softmax"], (64, 64)),
    "a100-nala-d128-dv64": (80, ["nala"], (128, 64)),
}


def compile_report(arch: int, kinds: list[str], dims: tuple[int, int], dtype: str) -> str:
    """scripts/kernel_shared_memory.py's report; it compiles outside the interpreter that tests/conftest.py turns
    on (the script re-runs itself without it)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/kernel_shared_memory.py"), "--arch", str(arch), "--kinds", *kinds]
        + ["--dims", *map(str, dims), "--dtype", dtype],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "\n0 of " in result.stdout, result.stdout
    return result.stdout


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("case", CASES)
def test_fp32_launches_fit_in_the_gpus_shared_memory(case):
    arch, kinds, dims = CASES[case]
    report = compile_report(arch, kinds, dims, "float32")
    assert "OVER" not in report, report
    compiled = [line for line in report.splitlines() if line.startswith("ok ")]
    assert len(compiled) >= 4 * len(kinds), report  # forward and backward kernels of every kind


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_16bit_launches_run_their_products_on_tensor_cores():
    """bf16 inputs: every launch whose products take bf16 operands compiles to mma/wgmma instructions for sm_90.
    Before the products went through kernels/ops/common/triton_utils.mm, the linear, scan and SOFT kernels cast
    bf16 to fp32 and compiled to none."""
    report = compile_report(90, ALL_KINDS, (64, 64), "bfloat16")
    assert "NOTC" not in report, report
    with_products = [line for line in report.splitlines() if line.startswith("ok ") and " mma   0 " not in line]
    assert len(with_products) >= 3 * len(ALL_KINDS), report
    # Hopper's warpgroup instructions, not only Ampere's mma.sync, for the 64-row tiles of the flash kernels and scan
    hopper_tiled = [line for line in with_products if " _flash_" in line or " _chunk_" in line]
    assert hopper_tiled and all(" wgmma   0 " not in line for line in hopper_tiled), report
