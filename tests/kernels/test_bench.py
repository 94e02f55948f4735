"""The benchmark CLI writes a table, JSON and PNG; its memory probe sees a known allocation."""

import json
import os
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


def test_bench_checks_fused_kernels_then_times_them(tmp_path):
    """The GPU suite's flow, on the CPU: Triton kernels (interpreted) checked against float64, then timed."""
    cmd = [
        sys.executable,
        "-m",
        "kernels.bench",
        "--quick",
        "--backend",
        "triton",
        "--check",
        "--seq",
        "20",
        "--batch",
        "1",
        "--heads",
        "2",
        "--kinds",
        "sigmoid",
        "lightning",
        "--out",
        str(tmp_path),
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "TRITON_INTERPRET": "1"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "kernels-cpu-quick.json").read_text())
    checked = {(c["kind"], c["causal"]) for c in data["checks"] if c["ok"]}
    assert checked == {("sigmoid", False), ("sigmoid", True), ("lightning", False), ("lightning", True)}
    assert data["roofline"]["copy_tbps"] > 0 and data["roofline"]["matmul_tflops"] > 0
    for row in data["rows"]:
        assert row["fwd_roofline"] > 0 and row["fwd_tflops"] > 0


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


def test_targets_and_work_models_hand_worked():
    from kernels.bench import SDPA, Row, Suite, evaluate_targets, forward_bytes, forward_flops

    suite = Suite(8, 12, 64, (1024,), "bfloat16", 0, 1)
    assert forward_flops("softmax", 1024, suite, causal=False) == 4 * 96 * 1024 * 1024 * 64
    assert forward_flops("softmax", 1024, suite, causal=True) == 2 * 96 * 1024 * 1024 * 64
    assert forward_flops("local", 1024, suite, causal=False) == 4 * 96 * 1024 * 64 * 64
    assert forward_bytes(1024, suite) == 4 * 96 * 1024 * 64 * 2

    def row(kind, n, ms, roof=None):
        return Row(kind, False, n, ms, 2 * ms, None, None, fwd_roofline=roof)

    rows = [
        row(SDPA, 1024, 1.2),
        row("sigmoid", 1024, 1.0),
        row("softmax", 1024, 1.5),
        row("nala", 1024, 0.5, 0.8),
        row(SDPA, 196, 0.1),
        row("sigmoid", 196, 0.2),
    ]
    verdicts = {t["target"]: t["ok"] for t in evaluate_targets(rows)}
    assert verdicts == {
        "sigmoid forward >= 1.1x SDPA at N=1024": True,  # 1.2 / 1.0
        "softmax forward >= 0.9x SDPA at N=1024": False,  # 1.2 / 1.5 = 0.8
        "nala forward faster than SDPA at N=1024": True,
        "nala >= 70% of copy bandwidth at N=1024": True,
    }


def test_bench_records_a_broken_kind_and_goes_on(tmp_path, monkeypatch):
    """One kind that raises (a compile error or out of memory on some GPU) is reported in the checks and
    failures and makes the exit code 1, while every other kind is still checked and timed."""
    from kernels import bench

    real = bench.attention

    def attention(q, k, v, kind, **options):
        if kind == "nala" and options.get("backend") != "reference":
            raise RuntimeError("simulated failure\nout of resources: shared memory")
        return real(q, k, v, kind, **options)

    monkeypatch.setattr(bench, "attention", attention)
    argv = ["--quick", "--check", "--seq", "16", "--kinds", "softmax", "nala", "--out", str(tmp_path)]
    assert bench.main(argv) == 1
    data = json.loads((tmp_path / "kernels-cpu-quick.json").read_text())
    checks = {(c["kind"], c["causal"]): c for c in data["checks"]}
    assert checks[("softmax", False)]["ok"] and checks[("softmax", True)]["ok"]
    assert not checks[("nala", False)]["ok"]
    assert checks[("nala", False)]["error"] == "RuntimeError: out of resources: shared memory"
    assert data["failures"] == [{"kind": "nala", "n": 16, "error": "RuntimeError: out of resources: shared memory"}]
    assert {r["kind"] for r in data["rows"]} == {"sdpa", "softmax"}


def test_peers_suite_writes_rows_targets_json_png(tmp_path):
    """The GPU peers suite's flow on the CPU: our fused kernels (interpreted) and reference timed, JSON schema."""
    cmd = [sys.executable, "-m", "kernels.bench", "--suite", "peers", "--seq", "32", "--batch", "1", "--heads", "2"]
    cmd += ["--dtype", "float32", "--repeats", "1", "--kinds", "lightning", "nala", "--out", str(tmp_path)]
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not measured: sdpa-flash, sdpa-cudnn, fla: CUDA only" in result.stdout
    assert "targets met" in result.stdout
    data = json.loads((tmp_path / "kernels-peers-cpu.json").read_text())
    assert {"gpu", "torch", "triton", "copy_TBps", "rows", "targets"} <= set(data)
    got = {(r["impl"], r["kind"], r["N"], r["causal"]) for r in data["rows"]}
    expected = {(impl, "lightning", 32, c) for impl in ("ours", "reference") for c in (False, True)}
    expected |= {("ours", "nala", 32, False), ("reference", "nala", 32, False)}
    assert got == expected
    assert all(r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 for r in data["rows"])
    assert (tmp_path / "kernels-peers-cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_peer_targets_are_judged_on_the_right_ratios():
    from kernels.bench_peers import PeerRow, evaluate

    rows = [
        PeerRow("ours", "lightning", 4096, True, 2.0, 5.0),
        PeerRow("fla", "lightning", 4096, True, 1.0, 5.0),
        PeerRow("sdpa-flash", "softmax", 4096, True, 4.0, 4.0),
        PeerRow("ours", "nala", 4096, False, 1.0, 3.0),
        PeerRow("reference", "nala", 4096, False, 2.0, 9.0),
        PeerRow("ours", "mala", 4096, False, 2.0, 3.0),
    ]
    targets = {t["target"]: (round(t["value"], 6), t["ok"]) for t in evaluate(rows, floor=lambda n: 0.6)}
    assert targets["causal lightning fwd / fla"] == (2.0, False)  # bound 1.25
    assert targets["causal lightning fwd+bwd / fla"] == (1.0, True)
    assert targets["causal lightning fwd / SDPA flash causal"] == (0.5, True)
    assert targets["causal lightning fwd+bwd / SDPA flash causal"] == (1.25, False)
    assert targets["nala fwd: share of the I/O floor"] == (0.6, True)  # 0.6 ms floor / 1.0 ms
    assert targets["mala fwd: share of the I/O floor"] == (0.3, False)
    assert targets["nala fwd+bwd speed-up over our reference"] == (3.0, True)
    assert targets["nala bwd / mala bwd"] == (2.0, False)  # (3 - 1) / (3 - 2)
    assert "causal norm fwd / fla" not in targets  # no rows to judge it on
