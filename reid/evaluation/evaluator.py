"""ReIDEvaluator: embeddings of an evaluation set collected batch by batch, scored once with `evaluate`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .ranking import evaluate


class ReIDEvaluator:
    """fast-reid's evaluator shape: `reset()`, `update(...)` per batch, `compute()` at the end. Query and gallery
    come in one stream, `is_query` marking the queries; `index` (each image's position in the dataset) lets
    `compute` drop the duplicates a distributed sampler pads with. Scores by Euclidean distance under the
    Market-1501 protocol: {"mAP", "rank1", "mINP"} as floats."""

    def __init__(self, max_rank: int = 10):
        self.max_rank = max_rank
        self.parts: list[tuple[Tensor, ...]] = []

    def __len__(self) -> int:
        """How many images have been collected since the last reset."""
        return sum(len(part[0]) for part in self.parts)

    def reset(self) -> None:
        self.parts.clear()

    def update(self, features: Tensor, pids: Tensor, camids: Tensor, is_query: Tensor, index: Tensor) -> None:
        """One batch: embeddings [B, D] and their identity, camera, query flag and dataset index [B]."""
        self.parts.append((features.detach(), pids, camids, is_query, index))

    def compute(self, gather: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
        """Scores of everything collected, then reset. `gather` (e.g. LightningModule.all_gather, with several
        processes) joins every process's tensors as [world, ...]."""
        if not self.parts:
            raise ValueError("ReIDEvaluator.compute: nothing collected (call update first)")
        features, pids, camids, is_query, index = (torch.cat(x) for x in zip(*self.parts, strict=True))
        self.reset()
        if gather is not None:  # gather, then drop the duplicates the distributed sampler padded with
            features, pids, camids, is_query, index = (
                gather(x).flatten(0, 1) for x in (features, pids, camids, is_query, index)
            )
        _, first = np.unique(index.cpu().numpy(), return_index=True)
        keep = torch.as_tensor(first, device=features.device)
        features, pids, camids, is_query = features[keep], pids[keep], camids[keep], is_query[keep].bool()
        q, g = is_query, ~is_query
        distance = torch.cdist(features[q].float(), features[g].float())
        result = evaluate(distance, pids[q], pids[g], camids[q], camids[g], max_rank=self.max_rank)
        return {"mAP": float(result["mAP"]), "rank1": float(result["cmc"][0]), "mINP": float(result["mINP"])}


__all__ = ["ReIDEvaluator"]
