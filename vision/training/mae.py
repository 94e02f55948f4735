"""LightningModule for MAE pre-training; the encoder can be exported for fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from ..models.mae import MaskedAutoencoder
from .schedule import param_groups, warmup_cosine


class MAEPretrainer(L.LightningModule):
    """MAE with AdamW (β = 0.9, 0.95) and warm-up + cosine, as in He et al.; labels in the batch are ignored.
    `mae`: MaskedAutoencoder's settings (encoder, encoder_kwargs, decoder_dim, ...; its defaults where absent)."""

    def __init__(
        self,
        mae: dict[str, Any] | None = None,
        lr: float = 1.5e-4,
        weight_decay: float = 0.05,
        warmup_fraction: float = 0.05,
        export_encoder: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.mae = MaskedAutoencoder(**(mae or {}))

    def training_step(self, batch, batch_idx):
        loss, _, _ = self.mae(batch[0])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"MAE loss is {loss.item()} at step {self.global_step}; lower lr or check data")
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        generator = torch.Generator(device=batch[0].device).manual_seed(batch_idx)  # same masks every epoch
        loss, _, _ = self.mae(batch[0], generator=generator)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            param_groups(self.mae, self.hparams.weight_decay), lr=self.hparams.lr, betas=(0.9, 0.95)
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = warmup_cosine(optimizer, int(self.hparams.warmup_fraction * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_fit_end(self) -> None:
        if self.hparams.export_encoder and self.trainer.is_global_zero:
            save_encoder(self.mae, self.hparams.export_encoder)


def save_encoder(mae: MaskedAutoencoder, path: str | Path) -> Path:
    """The encoder's weights as safetensors (written atomically), loadable with vision.load_checkpoint."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in mae.encoder.state_dict().items()}, str(tmp))
    tmp.replace(path)
    return path
