"""Stages 1 and 2 end to end through `python -m reid`, the pseudo-label sampler, and that stage 1 learns."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reid.data.sampler import PseudoLabelSampler
from reid.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[2]
# The issue asks for +0.10 target mAP over source-only. With the tiny configs (crop pad 2 at 64 x 32; stage 2
# clusters flip-averaged, per-camera standardised features, each averaged with its k-reciprocal neighbours from other
# cameras, 20 epochs) this data (generator seed 0) gives source-only 0.258, stage 1 with target BN 0.318, after
# stage 2 0.550 (0.538 with neighbours from any camera): +0.292; with neighbours from any camera, generator
# seeds 1 and 2 gave +0.222 and +0.274 (docs/reid.md). Source-only with stage 2's photometric augmentation is 0.349 on
# seed 1; stage 2 without that augmentation still reaches 0.393 there.
ADAPTATION_MARGIN = 0.10


def _fit(config: str, tmp: Path, *extra: str, timeout: float = 1200) -> Path:
    """Runs `python -m reid fit` in a subprocess on one thread (the tiny convolutions' fastest, and the test
    workers share two cores); returns its log folder."""
    cmd = [sys.executable, "-m", "reid", "fit", "--config", str(ROOT / "configs/reid" / config)]
    cmd += ["--trainer.default_root_dir", str(tmp), "--trainer.enable_progress_bar", "false", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "lightning_logs" / "version_0"


def _metric(log: Path, name: str) -> list[float]:
    with open(log / "metrics.csv") as f:
        return [float(r[name]) for r in csv.DictReader(f) if r.get(name)]


def _test_map(checkpoint: Path, root: Path, domain: str) -> float:
    """Test-set mAP of an exported inference model on one synthetic domain (independent of the module code)."""
    from reid import evaluate
    from reid.data import read_dataset
    from reid.export import net_from_checkpoint
    from reid.models.inference import ReIDModel

    model = ReIDModel(net_from_checkpoint(checkpoint))
    splits = read_dataset("market1501", root / domain)
    samples = splits.query + splits.gallery
    with torch.no_grad():
        features = model.embed([s.path for s in samples])
    nq = len(splits.query)
    pids, cams = np.array([s.pid for s in samples]), np.array([s.camid for s in samples])
    distance = torch.cdist(features[:nq], features[nq:])
    return evaluate(distance, pids[:nq], pids[nq:], cams[:nq], cams[nq:])["mAP"]


def test_pseudo_label_sampler_reads_labels_each_epoch():
    sampler = PseudoLabelSampler(size=40, batch_size=8, num_instances=4, seed=0)
    with pytest.raises(RuntimeError, match="no pseudo-labels"):
        list(sampler)
    sampler.labels = np.repeat(np.arange(10), 4)
    first = list(sampler)
    assert len(first) == len(sampler) == 40
    for batch in np.array(first).reshape(-1, 8):  # P=2 identities x K=4 per batch
        ids = sampler.labels[batch]
        assert len(set(ids[:4])) == 1 and len(set(ids[4:])) == 1 and ids[0] != ids[4]
    sampler.labels = np.repeat(np.arange(5), 8)  # new clusters: the next epoch follows them
    for batch in np.array(list(sampler)).reshape(-1, 8):
        assert len(set(sampler.labels[batch])) == 2


@pytest.mark.slow
@pytest.mark.timeout(2400)  # three trainings: 844-900 s in the full suite on a slow machine, the default limit is 900 s
def test_adaptation_beats_source_only_on_the_synthetic_target(tmp_path):
    """The tiny configs on the synthetic pair: stage 1 learns the source (test mAP far above an untrained
    network's); the CORE-ReID pipeline (stage 1 with target BN statistics, then stage 2) beats source-only training
    on the target's test set. Every stage's model is its best validation epoch by mAP on held-out target identities,
    never the test set (Lightning's `last.ckpt` is a copy of the last checkpoint saved, which is that one too)."""
    data = tmp_path / "data"
    generate(data, identities=96, cameras=4, images_per_camera=3, seed=0)
    roots = ["--data.init_args.source_root", str(data / "source"), "--data.init_args.target_root", str(data / "target")]
    roots += ["--data.init_args.source_camstyle", "null"]  # no stage 0 here: the held-out test runs the whole pipeline
    source_only = _fit(
        "synthetic_source_tiny_cpu.yaml", tmp_path / "s0", *roots, "--model.init_args.adapt_bn_on_target", "false"
    )
    stage1 = _fit("synthetic_source_tiny_cpu.yaml", tmp_path / "s1", *roots)
    stage1_best = next((stage1 / "checkpoints").glob("best-*.ckpt"))
    losses = _metric(stage1, "train/loss")
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])

    untrained = tmp_path / "untrained.ckpt"
    state = torch.load(stage1_best, map_location="cpu", weights_only=True)
    from reid.models.core_reid import CoreReIDNet

    fresh = CoreReIDNet("resnet_reid_tiny", state["hyper_parameters"]["num_classes"], input_size=(64, 32))
    state["state_dict"] = {f"net.{k}": v for k, v in fresh.state_dict().items()}
    torch.save(state, untrained)
    trained_map, untrained_map = _test_map(stage1_best, data, "source"), _test_map(untrained, data, "source")

    stage2 = _fit(
        "synthetic_target_tiny_cpu.yaml",
        tmp_path / "s2",
        *roots,
        "--model.init_args.source_checkpoint",
        str(stage1_best),
    )
    assert len(_metric(stage2, "val/mAP")) == 40
    assert _metric(stage2, "train/clusters_nonempty")[-1] > 20
    purity = _metric(stage2, "train/purity")
    best = next((stage2 / "checkpoints").glob("best-*.ckpt"))
    out = tmp_path / "model.safetensors"
    done = subprocess.run(
        [sys.executable, "-m", "reid.export", str(best), "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    from reid import load_model

    embedding = load_model(out).embed(torch.rand(2, 3, 100, 50))
    assert embedding.shape == (2, 768) and torch.allclose(embedding.norm(dim=1), torch.ones(2), atol=1e-5)

    direct = _test_map(next((source_only / "checkpoints").glob("best-*.ckpt")), data, "target")
    bn_only = _test_map(stage1_best, data, "target")
    adapted = _test_map(best, data, "target")
    print(
        f"source test mAP trained {trained_map:.3f} untrained {untrained_map:.3f}; target test mAP source-only "
        f"{direct:.3f}, stage 1 with target BN {bn_only:.3f}, after stage 2 {adapted:.3f}; cluster purity "
        f"first epoch {purity[0]:.3f} last {purity[-1]:.3f}"
    )
    assert trained_map > untrained_map + 0.2
    assert adapted > direct + ADAPTATION_MARGIN
    assert adapted > bn_only + ADAPTATION_MARGIN  # stage 2 itself, not only stage 1's target BN statistics


def test_stage0_runs_through_reid_fit(tmp_path):
    """`python -m reid fit` with the stage-0 config trains one camera pair's CycleGAN and writes its style grid."""
    data = tmp_path / "data"
    generate(data, identities=6, cameras=2, images_per_camera=2, domains=("source",))
    log = _fit(
        "synthetic_camstyle_tiny_cpu.yaml", tmp_path / "gan", "--data.init_args.root", str(data / "source"),
        "--trainer.max_epochs", "1", "--model.init_args.constant_epochs", "1", "--model.init_args.decay_epochs", "0",
        "--trainer.log_every_n_steps", "1",
    )  # fmt: skip
    assert _metric(log, "train/loss_g") and list((log / "checkpoints").glob("*.ckpt"))
    assert list(log.glob("samples/*.png"))
