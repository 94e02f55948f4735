"""The stages' optimiser and learning-rate schedule."""

from __future__ import annotations

import torch


def adam_with_warmup(params, h) -> dict:
    """Adam at `h.lr` (weight decay `h.weight_decay`), per epoch: linear warm-up from 1% over `h.warmup_epochs`,
    then the rate times `h.gamma` at each of `h.milestones` (the re-id recipe of BoT and CORE-ReID)."""
    optimizer = torch.optim.Adam(params, lr=h.lr, weight_decay=h.weight_decay)

    def factor(epoch: int) -> float:
        warm = 1.0 if epoch >= h.warmup_epochs else 0.01 + 0.99 * epoch / max(1, h.warmup_epochs)
        return warm * h.gamma ** sum(epoch >= m for m in h.milestones)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
