"""Scoring an embedding function on a dataset's test split: the query and gallery images of a folder, embedded
and ranked under the Market-1501 protocol. Used to compare models, and trivial baselines, on the same data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .ranking import evaluate


def evaluate_folder(
    embed: Callable[[Sequence[str]], Tensor], root: str | Path, dataset: str = "market1501"
) -> dict[str, float]:
    """mAP, rank-1 and mINP of `embed` (image paths -> [N, D] features, compared by Euclidean distance) on the
    test query and gallery of the `dataset` at `root`."""
    from ..data import read_dataset

    splits = read_dataset(dataset, root)
    samples = splits.query + splits.gallery
    with torch.no_grad():
        features = embed([s.path for s in samples]).float().cpu()
    nq = len(splits.query)
    pids, cams = np.array([s.pid for s in samples]), np.array([s.camid for s in samples])
    scores = evaluate(torch.cdist(features[:nq], features[nq:]), pids[:nq], pids[nq:], cams[:nq], cams[nq:])
    return {"mAP": float(scores["mAP"]), "rank1": float(scores["cmc"][0]), "mINP": float(scores["mINP"])}
