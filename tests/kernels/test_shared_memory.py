"""The widest linear-attention launches fit in an H100's shared memory, checked without a GPU.

On an H200 (2026-11-28) nala's backward at D = Dv = 128 failed at launch: Triton's default tiling asked for
379,008 bytes of shared memory, over the 232,448 an sm_90 block may have. scripts/kernel_shared_memory.py
records the launches the wrappers make and compiles them for sm_90 with Triton's own compiler, which reported
the same 379,008 bytes for the old tiling, so this test would have caught it on a CPU-only machine.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_widest_linear_attention_launches_fit_in_sm90_shared_memory():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/kernel_shared_memory.py"), "--arch", "90", "--kinds", "nala", "mala"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    # the script compiles outside the interpreter that tests/conftest.py turns on (it re-runs itself without it)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # nala and mala: state forward, apply forward, apply backward, state backward, each compiled
    assert "0 of 8 launches over the limit" in result.stdout, result.stdout
