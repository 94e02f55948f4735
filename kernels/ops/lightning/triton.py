"""lightning on the fused path: the chunked decayed scan with the heads' decay rates."""

from __future__ import annotations

import torch
from torch import Tensor

from ..common.chunk_scan import DecayedLinearAttention
from .reference import alibi_slopes


def lightning_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool, slopes: Tensor | None, chunk_size: int
) -> Tensor:
    """chunk_size is the reference path's memory knob; the kernels pick their own chunk length."""
    if slopes is None:
        slopes = torch.tensor(alibi_slopes(q.shape[1]), dtype=torch.float32)
    return DecayedLinearAttention.apply(q, k, v, slopes, causal)
