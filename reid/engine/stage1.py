"""Stage 1 of CORE-ReID, `SourcePretrainer`: label-smoothed CE on the global BN feature + batch-hard soft triplet
on the pre-BN feature over P x K source batches; the target batch is forwarded too (without gradient) so that
BatchNorm's running statistics see the target domain. Adam, linear warm-up, step decay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..losses import stage1_loss
from ..models.core_reid import CoreReIDNet
from .evaluated import EvaluatedModule
from .optim import adam_with_warmup


class SourcePretrainer(EvaluatedModule):
    """Stage 1. `num_classes` (source training identities) is read from the DataModule when not given.
    The image size is the DataModule's (height, width)."""

    def __init__(
        self,
        trunk: str = "resnet50_reid",
        trunk_kwargs: dict[str, Any] | None = None,
        num_classes: int | None = None,
        input_size: tuple[int, int] | None = None,
        lr: float = 3.5e-4,
        weight_decay: float = 5e-4,
        warmup_epochs: int = 10,
        milestones: Sequence[int] = (40, 70),
        gamma: float = 0.1,
        epsilon: float = 0.1,
        margin: float | None = None,
        adapt_bn_on_target: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net: CoreReIDNet | None = None
        if num_classes is not None and input_size is not None:
            self._build()

    def _build(self) -> None:
        h = self.hparams
        self.net = CoreReIDNet(h.trunk, h.num_classes, h.trunk_kwargs, tuple(h.input_size))

    def setup(self, stage: str) -> None:
        if self.net is not None:
            return
        dm = self.trainer.datamodule
        if self.hparams.num_classes is None:
            self.hparams.num_classes = dm.source_splits.num_train_pids
        if self.hparams.input_size is None:
            self.hparams.input_size = (dm.hparams.height, dm.hparams.width)
        self._build()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        source, target = (batch["source"], batch.get("target")) if "source" in batch else (batch, None)
        losses = stage1_loss(
            self.net(source["image"]), source["pid"], epsilon=self.hparams.epsilon, margin=self.hparams.margin
        )
        if target is not None and self.hparams.adapt_bn_on_target:
            with torch.no_grad():  # updates BatchNorm's running statistics with target images; no loss
                self.net.forward_parts(target["image"])
        if not torch.isfinite(losses["loss"]):
            raise FloatingPointError(f"stage-1 loss is {losses['loss'].item()} at step {self.global_step}")
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=len(source["pid"]))
        return losses["loss"]

    @property
    def inference_net(self) -> CoreReIDNet:
        return self.net

    def configure_optimizers(self):
        return adam_with_warmup(self.net.parameters(), self.hparams)
