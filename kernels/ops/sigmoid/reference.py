"""sigmoid attention (FlashSigmoid): O = σ(s·QKᵀ + b)V, b = −ln(Nk) by default; causal masks j > i."""

from __future__ import annotations

import torch
from torch import Tensor


def sigmoid_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, scale: float, bias: float) -> Tensor:
    """Each weight is independent (no row normalisation), so masked entries are simply zero."""
    weights = torch.sigmoid(scale * (q @ k.transpose(-1, -2)) + bias)
    if causal:
        weights = weights.tril()
    return weights @ v
