"""The training CLIs (`python -m nvs`, `reid`, `vision`) keep the README's command-line conventions: a missing
data folder is one line on stderr and exit code 2, Ctrl-C exits 130 without a traceback, every config keeps
`last.ckpt`, and `fit --ckpt_path last` resumes from the newest one of the run's earlier versions."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*/*.yaml"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_cli(package: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", package, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=ENV
    )


def assert_one_line_error(result: subprocess.CompletedProcess, package: str, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"python -m {package}: error: "), last
    for fragment in fragments:
        assert fragment in last, last


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_config_that_saves_checkpoints_keeps_last(config):
    trainer = yaml.safe_load(config.read_text())["trainer"]
    if trainer.get("enable_checkpointing") is False:
        return
    checkpoints = [c for c in trainer.get("callbacks") or [] if c["class_path"].endswith(".ModelCheckpoint")]
    assert checkpoints, f"{config.name}: Lightning's default ModelCheckpoint never writes last.ckpt"
    assert all(c.get("init_args", {}).get("save_last") for c in checkpoints), config.name


MISSING_DATA = {
    "nvs": ("configs/nvs/tiny_synthetic_cpu.yaml", ["--data.root", "{missing}", "--data.generate", "null"]),
    "vision": ("configs/vision/shapes_tiny_cpu.yaml", ["--data.init_args.root", "{missing}"]),
    "reid": ("configs/reid/synthetic_source_tiny_cpu.yaml", ["--data.init_args.source_root", "{missing}"]),
}


@pytest.mark.parametrize("package", sorted(MISSING_DATA))
def test_a_missing_data_folder_is_one_line(package, tmp_path):
    config, data = MISSING_DATA[package]
    missing, runs = tmp_path / "no_such_data", tmp_path / "runs"
    args = [a.format(missing=missing) for a in data]
    result = run_cli(package, "fit", "--config", config, *args, "--trainer.default_root_dir", str(runs))
    assert_one_line_error(result, package, str(missing))


def test_ckpt_path_last_without_a_checkpoint_is_an_error(tmp_path):
    args = ["--trainer.default_root_dir", str(tmp_path / "runs"), "--ckpt_path", "last"]
    result = run_cli("nvs", "fit", "--config", "configs/nvs/tiny_synthetic_cpu.yaml", *args)
    assert_one_line_error(result, "nvs", "--ckpt_path last", str(tmp_path / "runs"))


def _nvs_fit(tmp_path: Path, steps: int, *extra: str) -> subprocess.CompletedProcess:
    """The tiny nvs config on 6 generated scenes of 3 views (4 for training at batch 2: 2 steps an epoch),
    validating and checkpointing every 2 steps."""
    args = ["--config", "configs/nvs/tiny_synthetic_cpu.yaml", "--trainer.max_steps", str(steps)]
    args += ["--trainer.val_check_interval", "2", "--trainer.log_every_n_steps", "1"]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "runs")]
    args += ["--data.root", str(tmp_path / "scenes"), "--data.generate", "{scenes: 6, views: 3, size: 32, seed: 1}"]
    args += ["--data.holdout_every", "3", "--data.batch_size", "2", "--model.rays_per_scene", "32"]
    return run_cli("nvs", "fit", *args, *extra)


def test_fit_resumes_from_last_ckpt(tmp_path):
    first = _nvs_fit(tmp_path, 2)
    assert first.returncode == 0, first.stderr[-3000:]
    logs = tmp_path / "runs" / "lightning_logs"
    last = logs / "version_0" / "checkpoints" / "last.ckpt"
    assert last.exists(), sorted(logs.rglob("*"))
    second = _nvs_fit(tmp_path, 4, "--ckpt_path", "last")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Restored all states from the checkpoint at {last}" in second.stderr, second.stderr[-3000:]
    with open(logs / "version_1" / "metrics.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row.get("train/loss")]
    assert steps and min(steps) == 2, steps  # steps 2 and 3 of the resumed run (0 and 1 ran before)
    state = torch.load(logs / "version_1" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 4


def test_ctrl_c_exits_130_and_keeps_the_checkpoints(tmp_path):
    """A real SIGINT in the middle of training (after the first epoch's checkpoint): Lightning stops the run and
    exits 1 on its own; the CLI turns that into 130 and one line, and the checkpoint stays."""
    runs = tmp_path / "runs"
    args = ["fit", "--config", "configs/vision/shapes_tiny_cpu.yaml", "--trainer.default_root_dir", str(runs)]
    args += ["--trainer.max_epochs", "1000", "--trainer.enable_progress_bar", "false"]
    args += ["--data.init_args.synthetic_train", "64", "--data.init_args.synthetic_val", "32"]
    args += ["--data.init_args.batch_size", "32"]
    process = subprocess.Popen(
        [sys.executable, "-m", "vision", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    last = runs / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    try:
        deadline = time.monotonic() + 240
        while not last.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(1.0)  # into the next epoch
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("python -m vision: interrupted"), err[-1000:]
    assert last.exists()
