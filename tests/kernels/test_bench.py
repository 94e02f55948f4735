"""The benchmark CLI writes a table, JSON and PNG; its memory probe sees a known allocation."""

import json
import subprocess
import sys

import torch

from kernels.memory import cpu_peak_supported, peak_memory


def test_bench_writes_table_json_png(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "kernels.bench",
        "--quick",
        "--seq",
        "16",
        "33",
        "--kinds",
        "softmax",
        "nala",
        "lightning",
        "--out",
        str(tmp_path),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "x SDPA" in result.stdout and "lightning" in result.stdout
    data = json.loads((tmp_path / "kernels-cpu-quick.json").read_text())
    assert {(r["kind"], r["n"]) for r in data["rows"]} == {
        (k, n) for k in ("sdpa", "softmax", "nala", "lightning") for n in (16, 33)
    }
    for row in data["rows"]:
        assert row["fwd_ms"] > 0 and row["fwd_bwd_ms"] >= 0
        assert (row["fwd_vs_sdpa"] is None) == (row["kind"] == "sdpa")
    assert (tmp_path / "kernels-cpu-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp"))


def test_bench_bad_device_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kernels.bench", "--device", "cuda:abc", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--device" in result.stderr
    assert not list(tmp_path.iterdir())


def test_peak_memory_sees_a_known_allocation():
    if not cpu_peak_supported():
        import pytest

        pytest.skip("this kernel does not let a process reset its peak RSS (/proc/self/clear_refs)")
    with peak_memory(torch.device("cpu")) as peak:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del x
    assert 60 <= peak["mib"] < 200, peak
