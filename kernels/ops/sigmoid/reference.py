"""sigmoid attention (FlashSigmoid): O = σ(s·QKᵀ + b)V, b = −ln(Nk) by default; causal masks j > i."""

from __future__ import annotations

from torch import Tensor


def sigmoid_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, scale: float, bias: float) -> Tensor:
    """Each weight is independent (no row normalisation), so masked entries are simply zero.
    The bias and sigmoid act in place on the Nq×Nk logits: one such buffer, not three."""
    weights = (q * scale @ k.transpose(-1, -2)).add_(bias).sigmoid_()
    if causal:
        weights = weights.tril()
    return weights @ v
