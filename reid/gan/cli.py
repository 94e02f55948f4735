"""python -m reid.gan --root DIR --out DIR [...]: the whole of stage 0 from the command line."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch import seed_everything

from common.cli import OneLineParser

from .data import read_train_samples
from .stage0 import run_stage0


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not match or int(match[1]) % 4 or int(match[2]) % 4 or int(match[1]) == 0 or int(match[2]) == 0:
        raise argparse.ArgumentTypeError(f"expected HxW with both multiples of 4 (e.g. 256x128), got {text!r}")
    return int(match[1]), int(match[2])


def main(argv: Sequence[str] | None = None) -> list[tuple[str, int, int]]:
    """python -m reid.gan --root DIR --out DIR [...]: stage 0 of CORE-ReID (see `run_stage0`)."""
    p = OneLineParser(prog="python -m reid.gan", description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, help="dataset root (the folder holding bounding_box_train)")
    p.add_argument("--out", required=True, help="output folder (generators, run logs, rendered images)")
    p.add_argument("--dataset", default="market1501")
    p.add_argument("--cameras", default="all", help="'all' or comma-separated 0-based camids (Market c1 is 0)")
    p.add_argument("--size", type=_size, default=(256, 128), help="HxW the GANs train and render at")
    p.add_argument("--epochs", type=int, default=50, help="epochs per camera pair (CamStyle: 50)")
    p.add_argument("--decay-epochs", type=int, default=None, help="last epochs of linear lr decay (default 40%%)")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--n-blocks", type=int, default=9)
    p.add_argument("--n-layers-d", type=int, default=3)
    p.add_argument("--lambda-cycle", type=float, default=10.0)
    p.add_argument("--lambda-identity", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument(
        "--max-images-per-camera",
        type=int,
        default=None,
        help="train each pair on at most this many images per camera (evenly spaced; all are rendered)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds weights, batches and the image pool (runs repeat)")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--devices", default="auto")
    p.add_argument("--precision", default=None)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they show only on a terminal)")
    args = p.parse_args(argv)

    decay = round(0.4 * args.epochs) if args.decay_epochs is None else args.decay_epochs
    if args.epochs < 1 or not 0 <= decay <= args.epochs:
        p.error(f"--epochs/--decay-epochs: need epochs >= 1 and 0 <= decay <= epochs, got {args.epochs}/{decay}")
    if args.max_images_per_camera is not None and args.max_images_per_camera < 1:
        p.error(f"--max-images-per-camera: expected a positive count, got {args.max_images_per_camera}")
    try:
        samples = read_train_samples(args.root, args.dataset)
    except (FileNotFoundError, ValueError) as error:
        p.error(str(error))
    present = sorted({c for _, _, c in samples})
    if args.cameras == "all":
        cameras = present
    else:
        try:
            cameras = sorted({int(c) for c in args.cameras.split(",")})
        except ValueError:
            p.error(f"--cameras: expected 'all' or comma-separated integers, got {args.cameras!r}")
        missing = sorted(set(cameras) - set(present))
        if missing or len(cameras) < 2:
            p.error(f"--cameras: need at least two of the cameras present {present}, got {args.cameras!r}")
    model = {
        "ngf": args.ngf,
        "ndf": args.ndf,
        "n_blocks": args.n_blocks,
        "n_layers_d": args.n_layers_d,
        "lambda_cycle": args.lambda_cycle,
        "lambda_identity": args.lambda_identity,
        "lr": args.lr,
        "constant_epochs": args.epochs - decay,
        "decay_epochs": decay,
    }
    trainer = {"accelerator": args.accelerator, "devices": args.devices}
    if args.precision:
        trainer["precision"] = args.precision
    height, width = args.size
    seed_everything(args.seed, verbose=False)
    progress = not args.quiet and sys.stderr.isatty()
    new = run_stage0(
        samples,
        args.out,
        cameras,
        height,
        width,
        model,
        args.batch_size,
        args.num_workers,
        trainer,
        progress=progress,
        max_images_per_camera=args.max_images_per_camera,
    )
    print(f"wrote {len(new)} camera-style images to {Path(args.out) / 'bounding_box_train_camstyle'}")
    return new
