"""How well a re-id checkpoint's features cluster on a target's training images, under stage 2's feature
conditioning options, without training: identity purity and camera purity of K-means with a fixed K and with K
estimated from the data, beside the camera purity of the true identities and the camera chance level. Camera
purity far above the identities' own means the clusters follow the cameras.

    python scripts/reid_cluster_probe.py CHECKPOINT TARGET_ROOT [--variants raw,cam,cam+exp6,cam+xexp6]
        [--num-clusters 40] [--json OUT]

Variants: `+`-joined steps; `raw` (nothing), `cam` (per-camera standardisation), `expK` (k-reciprocal expansion
with k = K), `xexpK` (the same among other cameras' images only). The target's training split is read as stage 2
reads it (market1501 layout, 20 % of the identities held out, 64 x 32 crops unless the checkpoint says otherwise).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

from reid.cluster_count import estimate_num_clusters
from reid.clustering import camera_chance, camera_purity, cluster_purity, condition_features, kmeans
from reid.data import ReIDData
from reid.engine.checkpoints import read_network
from reid.engine.stage2 import clustering_features
from reid.models.core_reid import CoreReIDNet

STEP = re.compile(r"^(raw|cam|x?exp(\d+))$")


def parse_variant(text: str) -> dict:
    """'cam+xexp6' -> condition_features keyword arguments."""
    options = {"normalize": False, "expansion": 0, "cross_camera": False}
    for step in text.split("+"):
        match = STEP.match(step)
        if not match:
            raise ValueError(f"--variants: unknown step {step!r} in {text!r} (raw, cam, expK, xexpK)")
        if step == "cam":
            options["normalize"] = True
        elif match.group(2):
            options["expansion"], options["cross_camera"] = int(match.group(2)), step.startswith("x")
    return options


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", help="stage-1 or stage-2 Lightning checkpoint, or a saved .safetensors model")
    p.add_argument("target_root", type=Path, help="the target domain's folder (market1501 layout)")
    p.add_argument("--variants", default="raw,cam,cam+exp6,cam+xexp6")
    p.add_argument("--num-clusters", type=int, default=40, help="the fixed K (beside the estimated one)")
    p.add_argument("--held-out-fraction", type=float, default=0.2)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    try:
        variants = {v: parse_variant(v) for v in args.variants.split(",") if v}
        weights, config = read_network(args.checkpoint)
    except (ValueError, FileNotFoundError) as error:
        p.error(str(error))
    net = CoreReIDNet(config["trunk"], 0, config["trunk_kwargs"], tuple(config["input_size"]))
    net.load_state_dict({k: v for k, v in weights.items() if not k.startswith("classifier.")}, strict=False)
    height, width = config["input_size"]
    root = str(args.target_root)
    data = ReIDData("market1501", root, "market1501", root, height=height, width=width, batch_size=32,
                    num_instances=4, num_workers=0, held_out_fraction=args.held_out_fraction)  # fmt: skip
    data.setup("fit")
    features = clustering_features(net, net, data.loader(data.target_train, train=False), flip=True)[0]
    cams = torch.tensor([s.camid for s in data.target_train])
    pids = torch.tensor([s.pid for s in data.target_train])
    header = {
        "images": len(pids),
        "identities": len(pids.unique()),
        "camera_chance": round(camera_chance(cams), 4),
        "camera_purity_identities": round(camera_purity(pids, cams), 4),
    }
    print(" ".join(f"{k} {v}" for k, v in header.items()))
    rows = []
    for name, options in variants.items():
        clustered = condition_features(features, cams, **options)
        estimated, _ = estimate_num_clusters(clustered)
        row = {"variant": name, **options}
        for label, k in (("fixed", args.num_clusters), ("estimated", estimated)):
            labels, _ = kmeans(clustered, min(k, len(clustered) - 1), iters=50, seed=0)
            row[label] = {"K": k, "identity_purity": round(cluster_purity(labels, pids), 4),
                          "camera_purity": round(camera_purity(labels, cams), 4)}  # fmt: skip
        rows.append(row)
        print(
            f"{name:16s} " + " | ".join(
                f"K={row[s]['K']:<4d} identity {row[s]['identity_purity']:.3f} camera {row[s]['camera_purity']:.3f}"
                for s in ("fixed", "estimated")
            )
        )  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({**header, "checkpoint": args.checkpoint, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
