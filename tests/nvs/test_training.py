"""`python -m nvs fit` end to end: on a handful of generated scenes it trains, validates against the trivial
baselines and writes renders and a checkpoint; the tiny config's full run must learn, on its own held-out scenes
and on another renderer's."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nvs.cameras import rays_for_pixels

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs/nvs/tiny_synthetic_cpu.yaml")
GPU = str(ROOT / "configs/nvs/synthetic_gpu.yaml")


def run_module(module: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the repository root, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_fit_runs_validates_and_checkpoints(tmp_path):
    data = tmp_path / "scenes"
    args = ["--config", TINY, "--trainer.max_steps", "6", "--trainer.val_check_interval", "3"]
    args += ["--trainer.default_root_dir", str(tmp_path), "--data.root", str(data)]
    args += ["--data.generate", "{scenes: 6, views: 3, size: 32, seed: 1}", "--data.holdout_every", "3"]
    args += ["--data.batch_size", "2", "--model.rays_per_scene", "32", "--trainer.precision", "bf16-mixed"]
    result = run_module("nvs", "fit", *args, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (data / ".complete").exists() and len(list(data.glob("scene_*/transforms.json"))) == 6
    run = next(tmp_path.glob("lightning_logs/version_0"))
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    val = [r for r in rows if r.get("val/psnr")]
    assert val and all(float(r["val/psnr_input_baseline"]) > 0 and float(r["val/psnr_mean_baseline"]) > 0 for r in val)
    object_metrics = ("val/psnr_object", "val/iou", "val/iou_input_baseline", "val/depth_absrel")
    assert all(0 <= float(r["val/iou"]) <= 1 and all(r.get(k) for k in object_metrics) for r in val)
    assert all(torch.isfinite(torch.tensor(float(r["train/loss"]))) for r in rows if r.get("train/loss"))
    assert list((run / "renders").glob("val_step*.png")) and list((run / "checkpoints").glob("*.ckpt"))
    # `nvs test` on the checkpoint reports the same metrics, object ones included
    checkpoint = next((run / "checkpoints").glob("*.ckpt"))
    same_data = {
        "--data.root": str(data),
        "--data.generate": "{scenes: 6, views: 3, size: 32, seed: 1}",
        "--data.holdout_every": "3",
        "--trainer.default_root_dir": str(tmp_path / "test"),
        "--ckpt_path": str(checkpoint),
    }
    test = run_module("nvs", "test", "--config", TINY, *(x for kv in same_data.items() for x in kv), timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    for name in ("test/psnr", "test/psnr_object", "test/iou", "test/iou_all_object_baseline", "test/depth_absrel"):
        assert name in test.stdout, name


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_tiny_config_learns_novel_views(tmp_path):
    """The tiny CPU config (about 9 minutes on one thread here, scene generation and validation included) must beat both
    trivial baselines on held-out scenes' novel views by the issue's 2 dB, and see the object: object PSNR above
    both baselines on the object's pixels, a silhouette (opacity > 0.5) closer to the true one than predicting every
    pixel as object (by 0.3 IoU) and than reusing the input view's mask, and a depth error on the object at most
    0.75x a flat card's at the object's distance. Seed 0 at step 4000: object PSNR 17.31 dB against 14.43 (input)
    and 13.14 (mean colour); IoU 0.721 against 0.192 (all object) and 0.634 (input mask); depth abs-rel 0.063
    against 0.137 (flat card); full-image PSNR 22.10 dB in that run. Measured on its 40 held-out scenes before the
    object metrics existed: 22.07 / 22.11 / 21.88 / 22.05 dB (seeds 0-3) against 18.29 (input image) and 17.27 (mean
    colour), i.e. +3.59 to +3.82 and +4.61 to +4.84 dB. It also asserts that the training loss falls (the last tenth
    of the logged losses averaged 0.30-0.35x the first tenth in those runs). The two validations (steps 2000 and
    4000) are not compared: the second was higher in every run (+0.6 to +1.1 dB), but what the issue asks for is the
    final margin."""
    args = ["--config", TINY, "--trainer.default_root_dir", str(tmp_path), "--data.root", str(tmp_path / "scenes")]
    result = run_module("nvs", "fit", *args, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(next(tmp_path.glob("lightning_logs/version_0/metrics.csv"))) as f:
        metrics = list(csv.DictReader(f))
    losses = [float(r["train/loss"]) for r in metrics if r.get("train/loss")]
    tenth = max(1, len(losses) // 10)
    early, late = sum(losses[:tenth]) / tenth, sum(losses[-tenth:]) / tenth
    rows = [r for r in metrics if r.get("val/psnr")]
    last = {k[4:]: float(v) for k, v in rows[-1].items() if k.startswith("val/") and v}
    by_validation = [round(float(r["val/psnr"]), 2) for r in rows]
    print(f"train loss {early:.4f} -> {late:.4f}; held-out PSNR by validation: {by_validation}; {last}")
    assert late < 0.6 * early
    assert last["psnr"] >= last["psnr_input_baseline"] + 2.0
    assert last["psnr"] >= last["psnr_mean_baseline"] + 2.0
    assert last["psnr_object"] >= last["psnr_object_input_baseline"] + 1.0
    assert last["psnr_object"] >= last["psnr_object_mean_baseline"] + 2.0
    assert last["iou"] >= last["iou_all_object_baseline"] + 0.3
    assert last["iou"] > last["iou_input_baseline"]
    assert last["depth_absrel"] <= 0.75 * last["depth_absrel_baseline"]
    # the same model on scenes of another renderer it never saw (scripts/raycast_scenes.py): classic_880, this
    # config's seed-0 run, scored 18.60 dB against 16.96 / 17.15 (input image / mean colour), object 16.57 dB against
    # 14.43 / 14.20, IoU 0.655 against 0.611 (input mask) and 0.303 (all object); this test's own run (seed 0
    # again) 18.06 dB, object 16.40 dB, IoU 0.652, depth abs-rel 0.099 against 0.205 (flat card). The full-image margin
    # is the smallest (+0.92 to +1.45 dB over the better baseline), as the background fills most pixels
    other = evaluate_on_raycast_scenes(next(tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")), tmp_path)
    print(f"raycast scenes: {other}")
    assert other["psnr"] >= max(other["psnr_input_baseline"], other["psnr_mean_baseline"]) + 0.4
    assert other["psnr_object"] >= max(other["psnr_object_input_baseline"], other["psnr_object_mean_baseline"]) + 1.0
    assert other["iou"] >= other["iou_all_object_baseline"] + 0.2
    assert other["iou"] >= other["iou_input_baseline"] - 0.02
    assert other["depth_absrel"] <= 0.75 * other["depth_absrel_baseline"]


def evaluate_on_raycast_scenes(checkpoint: Path, tmp_path: Path, scenes: int = 20) -> dict[str, float]:
    """`nvs test`'s metrics for a checkpoint on held-out scenes of scripts/raycast_scenes.py (seed 300, 8 views at
    32 px, every scene held out)."""
    import lightning as L

    from nvs.data.datamodule import NViSTData
    from nvs.training import NViSTModule

    sys.path.insert(0, str(ROOT / "scripts"))
    from raycast_scenes import write_scenes

    root = write_scenes(tmp_path / "raycast", scenes, views=8, size=32, seed=300)
    size = dict(input_height=32, input_width=32, target_height=32, target_width=32)
    data = NViSTData(str(root), **size, targets=7, holdout_every=1, batch_size=1)
    module = NViSTModule.load_from_checkpoint(checkpoint, map_location="cpu")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (results,) = trainer.test(module, datamodule=data, verbose=False)
    return {key.removeprefix("test/"): float(value) for key, value in results.items()}


@pytest.mark.slow
def test_gpu_recipe_parses_and_runs_one_step_on_the_cpu(tmp_path):
    """configs/nvs/synthetic_gpu.yaml as it is (model size, bf16 autocast, varied scenes at 64²), with only the
    device, the step count and the data shrunk: one training step and one validation with the object metrics."""
    overrides = {
        "--trainer.accelerator": "cpu",
        "--trainer.max_steps": "1",
        "--trainer.max_time": "null",
        "--trainer.val_check_interval": "1",
        "--trainer.limit_val_batches": "1",
        "--trainer.default_root_dir": str(tmp_path),
        "--data.root": str(tmp_path / "scenes"),
        "--data.generate": "{scenes: 4, views: 2, size: 64, seed: 0, style: varied, workers: 2}",
        "--data.holdout_every": "2",
        "--data.batch_size": "2",
        "--data.num_workers": "0",
        "--data.targets": "2",
        "--model.rays_per_scene": "64",
    }
    result = run_module("nvs", "fit", "--config", GPU, *(x for kv in overrides.items() for x in kv), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(next(tmp_path.glob("lightning_logs/version_0/metrics.csv"))) as f:
        val = [r for r in csv.DictReader(f) if r.get("val/psnr")]
    assert val and all(r.get(key) for key in ("val/psnr_object", "val/iou", "val/depth_absrel") for r in val)


def test_rays_for_pixels_hand_worked():
    """Pixel (u, v) of an identity camera, focal 10, centre (2, 2): direction ∝ (u + 0.5 - 2, v + 0.5 - 2, 10)."""
    poses = torch.eye(4).repeat(1, 2, 1, 1)
    poses[0, 1, :3, 3] = torch.tensor([1.0, 2.0, 3.0])
    intrinsics = torch.tensor([[[10.0, 10.0, 2.0, 2.0], [10.0, 10.0, 2.0, 2.0]]])
    origins, dirs = rays_for_pixels(
        poses, intrinsics, torch.tensor([[0, 1]]), torch.tensor([[3.0, 1.5]]), torch.tensor([[1.5, 1.5]])
    )
    assert torch.allclose(origins[0, 1], torch.tensor([1.0, 2.0, 3.0]))
    expected = torch.tensor([1.5, 0.0, 10.0])
    assert torch.allclose(dirs[0, 0], expected / expected.norm())
    assert torch.allclose(dirs[0, 1], torch.tensor([0.0, 0.0, 1.0]))


def test_nvs_bench_runs(tmp_path):
    args = ["--configs", "tiny", "--size", "16", "--repeats", "1", "--out", str(tmp_path)]
    result = run_module("nvs.bench", *args, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "decoder" in result.stdout and (tmp_path / "nvs-cpu.png").exists()
