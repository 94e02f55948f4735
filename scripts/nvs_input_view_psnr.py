"""Input-view PSNR and gain over the mean colour (nvs/ood.py) of the shipped NViST model, or --checkpoint's,
on held-out synthetic scenes, the bundled real photo and odd generated images: the measurements behind
ood.INPUT_VIEW_MIN_PSNR and ood.INPUT_VIEW_MIN_GAIN (docs/nvs.md).

    python -m nvs.data.synthetic --out /tmp/held --scenes 30 --views 2 --size 64 --seed 1717
    python scripts/nvs_input_view_psnr.py /tmp/held [more scene folders ...] [--checkpoint model.safetensors]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import nvs
from nvs.ood import input_view_scores, notice


def odd_images(size: int = 96) -> dict[str, torch.Tensor]:
    """Images unlike any synthetic scene: noise, a fine checkerboard, colour stripes, a hard diagonal split."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    checker = ((x // 6 + y // 6) % 2).astype(np.float32)
    stripes = np.stack([(x // 8) % 3 == k for k in range(3)], axis=0).astype(np.float32)
    split = (x > y).astype(np.float32)
    images = {
        "noise": rng.random((3, size, size), dtype=np.float32),
        "checkerboard": np.repeat(checker[None], 3, axis=0),
        "stripes": stripes,
        "split": np.stack([split, 1 - split, 0.5 * np.ones_like(split)]),
    }
    return {name: torch.from_numpy(image) for name, image in images.items()}


def score(model: nvs.NViST, image) -> dict[str, float]:
    prepared, scale = model.prepare(image)
    return input_view_scores(model.predict_prepared(prepared, scale=scale), prepared)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenes", nargs="*", type=Path, help="folders of nerfstudio scenes (first frame of each)")
    parser.add_argument("--checkpoint", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nvs.load_model(args.checkpoint)
    for folder in args.scenes:
        scores = [score(model, frame) for frame in sorted(folder.glob("*/images/frame_00000.png"))]
        psnrs, gains = (np.array([s[key] for s in scores]) for key in ("psnr", "gain"))
        warned = sum(notice(s, None) is not None for s in scores)
        print(
            f"{folder}: {len(scores)} scenes, PSNR min / 5% / median {np.percentile(psnrs, [0, 5, 50]).round(2)} dB, "
            f"gain {np.percentile(gains, [0, 5, 50]).round(2)} dB, notice on {warned}"
        )
    others = {"coffee.jpg": Path(nvs.__file__).with_name("assets") / "coffee.jpg", **odd_images()}
    for name, image in others.items():
        s = score(model, image)
        print(f"{name}: PSNR {s['psnr']:.2f} dB, gain {s['gain']:+.2f} dB, notice: {notice(s, None) is not None}")


if __name__ == "__main__":
    main()
