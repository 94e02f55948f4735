"""Learning-rate schedules, stepped every batch."""

from __future__ import annotations

import math
from collections.abc import Sequence


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """The multiplier of the base rate at `step`: linear warm-up to 1 over `warmup_steps`, then cosine decay
    to `min_ratio` at `total_steps` (held there after)."""
    if step < warmup_steps:
        return (step + 1) / max(1, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int, min_ratio: float | Sequence[float] = 0.01):
    """A LambdaLR of `warmup_cosine_factor`; `min_ratio` is one floor for every parameter group, or one per
    group (a group with its own base rate that should end at a shared absolute rate)."""
    import torch

    if isinstance(min_ratio, (int, float)):
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine_factor(step, warmup_steps, total_steps, min_ratio)
        )
    if len(min_ratio) != len(optimizer.param_groups):
        groups = len(optimizer.param_groups)
        raise ValueError(f"min_ratio: expected one per parameter group ({groups}), got {min_ratio}")
    factors = [
        lambda step, floor=floor: warmup_cosine_factor(step, warmup_steps, total_steps, floor) for floor in min_ratio
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factors)


__all__ = ["warmup_cosine", "warmup_cosine_factor"]
