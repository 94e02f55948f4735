"""LightningModule for image classification with any timm model (ours included)."""

from __future__ import annotations

from typing import Any

import lightning as L
import timm
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from .schedule import param_groups, warmup_cosine


class ImageClassifier(L.LightningModule):
    """timm.create_model(model, num_classes=..., **model_kwargs) trained with label-smoothed CE, AdamW and
    warm-up + cosine; top-1 accuracy from torchmetrics. Optionally starts from a local checkpoint."""

    def __init__(
        self,
        model: str = "lavit_tiny_patch16_224",
        num_classes: int = 1000,
        model_kwargs: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_fraction: float = 0.1,
        label_smoothing: float = 0.1,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = timm.create_model(model, num_classes=num_classes, **(model_kwargs or {}))
        if checkpoint:
            from lightning.pytorch.utilities import rank_zero_info

            from ..checkpoint import load_checkpoint

            # raises ValueError for another model's checkpoint, warns when it fills less than half of the model
            report = load_checkpoint(self.net, checkpoint)
            rank_zero_info(f"checkpoint {checkpoint}: {str(report).splitlines()[0]}")
        self.val_acc = MulticlassAccuracy(num_classes=num_classes)
        self.test_acc = MulticlassAccuracy(num_classes=num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        loss = F.cross_entropy(self(images), labels, label_smoothing=self.hparams.label_smoothing)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at step {self.global_step}; lower lr or check data"
            )
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch, metric, prefix: str):
        images, labels = batch
        logits = self(images)
        self.log(f"{prefix}/loss", F.cross_entropy(logits, labels), sync_dist=True)
        metric.update(logits, labels)
        self.log(f"{prefix}/acc", metric, prog_bar=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_acc, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_acc, "test")

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(param_groups(self.net, self.hparams.weight_decay), lr=self.hparams.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = warmup_cosine(optimizer, int(self.hparams.warmup_fraction * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
