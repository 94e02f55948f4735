"""The whole pipeline adapts to target domains it was never tuned on: stage 0 renders the labelled source in each
of its cameras' styles (the tiny CycleGANs), stage 1 trains on the source and its renders with the target's BN
statistics, stage 2 is the committed config. The targets are held-out domains of reid.data.domains (their own
generator seeds, figure styles, camera counts and camera effects) defined after the stage-2 config was chosen, with
only the data roots changed. Measured gains over stage 1 (docs/reid.md, "Held-out domains: the committed recipe"):
museum +21.8 / +17.8 / +20.8, depot +20.8 / +21.3 / +19.2 test mAP points on seeds 0 / 1 / 2; this test's own
seeded stage 0, run by hand: museum 7.6 -> 27.7 %, depot 18.3 -> 37.3 %.

To fit the suite's time budget the test runs museum only (with depot as well it took 58 minutes of one core on a
slower machine, 3460 s; `DOMAINS` takes both for a run by hand), and its CycleGANs train on 72 of the source's 144
images per camera (`--max-images-per-camera`; every image is still rendered), which halves stage 0: measured
museum 7.9 -> 35.3 % (stage 0 357 s, stage 1 1077 s, stage 2 154 s on one thread beside another run), against
7.6 -> 27.7 % with every image."""

from __future__ import annotations

import pytest

from reid.data.domains import generate_held_out
from reid.data.synthetic import generate
from reid.gan import main as stage0

from .test_training import _fit, _test_map

GAIN = 0.10  # the target gain over stage 1 (with the target's BN statistics)
DOMAINS = ("museum",)  # ("museum", "depot"): both, about twice the time after stage 0
# the tiny stage 0 of docs/reid.md ("Stage 0 in the pipeline")
TINY_STAGE0 = "--size 64x32 --epochs 10 --ngf 16 --ndf 16 --n-blocks 3 --n-layers-d 2 --batch-size 4".split()
TINY_STAGE0 += "--num-workers 0 --accelerator cpu -q".split()


def _best(log):
    return next((log / "checkpoints").glob("best-*.ckpt"))


@pytest.mark.slow(first=True)  # the suite's longest test: started at once (tests/conftest.py)
@pytest.mark.timeout(4800)  # data and stage 0 (about 7 min), then a stage 1 and a stage 2 per domain (about 25 min)
def test_the_pipeline_gains_ten_points_on_a_held_out_domain(tmp_path, one_thread):
    pair, held_out = tmp_path / "pair", tmp_path / "held_out"
    generate(pair, identities=96, cameras=4, images_per_camera=3, seed=0)  # the tuned pair's source
    generate_held_out(held_out, names=list(DOMAINS))
    half = ["--max-images-per-camera", "72"]  # of 144: half stage 0's time (the module docstring)
    stage0(["--root", str(pair / "source"), "--out", str(tmp_path / "source_gan"), *TINY_STAGE0, *half])
    renders = ["--data.init_args.source_camstyle", str(tmp_path / "source_gan" / "bounding_box_train_camstyle")]
    scores = {}
    for domain in DOMAINS:
        roots = ["--data.init_args.source_root", str(pair / "source")]
        roots += ["--data.init_args.target_root", str(held_out / domain)]
        stage1 = _fit("synthetic_source_tiny_cpu.yaml", tmp_path / domain / "s1", *roots, *renders, timeout=2700)
        stage1 = _best(stage1)  # four times the batches of a stage 1 on the real images alone
        init = ["--model.init_args.source_checkpoint", str(stage1)]
        stage2 = _best(_fit("synthetic_target_tiny_cpu.yaml", tmp_path / domain / "s2", *roots, *init))
        scores[domain] = _test_map(stage1, held_out, domain), _test_map(stage2, held_out, domain)
        print(f"{domain}: test mAP stage 1 {scores[domain][0]:.3f}, stage 2 {scores[domain][1]:.3f}")
    assert all(after > before + GAIN for before, after in scores.values()), scores
