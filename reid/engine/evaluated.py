"""What stages 1 and 2 share: validation and testing through one ReIDEvaluator."""

from __future__ import annotations

import lightning as L

from ..evaluation import ReIDEvaluator
from ..models.core_reid import CoreReIDNet


class EvaluatedModule(L.LightningModule):
    """A LightningModule whose validation and test steps feed `inference_net`'s BMFN embeddings of each batch
    (query and gallery together) to a ReIDEvaluator, and log its mAP, rank-1 and mINP at the epoch's end as
    val/... or test/.... Subclasses name their inference network."""

    def __init__(self):
        super().__init__()
        self.evaluator = ReIDEvaluator(max_rank=10)

    @property
    def inference_net(self) -> CoreReIDNet:
        raise NotImplementedError

    def _collect(self, batch: dict) -> None:
        features = self.inference_net.embed(batch["image"])
        self.evaluator.update(features, batch["pid"], batch["camid"], batch["is_query"], batch["index"])

    def _log_scores(self, prefix: str) -> None:
        if self.trainer.sanity_checking:  # its first batches may hold queries only (large query sets): no score
            self.evaluator.reset()
            return
        if len(self.evaluator):
            gather = self.all_gather if self.trainer.world_size > 1 else None
            scores = self.evaluator.compute(gather)
            self.log_dict({f"{prefix}/{k}": v for k, v in scores.items()}, prog_bar=True)

    def on_validation_epoch_start(self) -> None:
        self.evaluator.reset()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    # testing collects and scores as validation does; only the logged names differ
    on_test_epoch_start = on_validation_epoch_start
    test_step = validation_step

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")
