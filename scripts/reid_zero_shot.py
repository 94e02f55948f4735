"""Zero-shot test mAP of saved re-id models on generated domains, beside the colour-histogram baseline: how useful
a model is as a starting point on a camera network it has never seen.

    python scripts/reid_zero_shot.py --data DIR [--domains NAMES] [--model NAME=PATH ...] [--json OUT]

DIR holds one Market-1501 folder per domain (`python -m reid.data.domains --out DIR`); NAMES defaults to all of
them. Each --model is a `reid.save_model` file (.safetensors with its JSON) or a Lightning checkpoint; without one,
the shipped default.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from reid.baselines import histogram_embedder
from reid.data.domains import DOMAINS
from reid.evaluation import evaluate_folder
from reid.export import net_from_checkpoint
from reid.models.inference import DEFAULT_WEIGHTS, ReIDModel


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--domains", default=",".join(DOMAINS))
    p.add_argument("--model", action="append", default=[], help="NAME=PATH (repeatable); default: the shipped one")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    models = dict(m.split("=", 1) for m in args.model) or {"shipped": str(DEFAULT_WEIGHTS)}
    embedders = {"colour_histogram": histogram_embedder()}
    embedders |= {name: ReIDModel(net_from_checkpoint(path)).embed for name, path in models.items()}
    rows = []
    for domain in args.domains.split(","):
        row = {"domain": domain}
        for name, embed in embedders.items():
            row[name] = round(evaluate_folder(embed, args.data / domain)["mAP"], 4)
        rows.append(row)
        print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"models": models, "test_mAP": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
