"""softmax attention: O = softmax(s·QKᵀ)V, optionally causal (mask j > i)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def softmax_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, scale: float) -> Tensor:
    """torch SDPA: memory-efficient on every device, exact softmax attention."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
