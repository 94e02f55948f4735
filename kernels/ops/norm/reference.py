"""norm: TransNormer's NormAttention, O = RMSNorm(φ(Q)(φ(K)ᵀV)) with no scale and no denominator."""

from __future__ import annotations

import torch
from torch import Tensor

from ..shared import chunked_decay_causal, elu1, simple_rms_norm

FEATURE_MAPS = {"elu1": elu1, "relu": torch.relu}


def norm_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, feature_map: str, chunk_size: int) -> Tensor:
    """Non-causal: the D×Dv state φ(K)ᵀV. Causal: chunked (intra-chunk mask + running state)."""
    phi = FEATURE_MAPS[feature_map]
    phi_q, phi_k = phi(q), phi(k)
    if causal:
        out = chunked_decay_causal(phi_q, phi_k, v, None, chunk_size)
    else:
        out = phi_q @ (phi_k.transpose(-1, -2) @ v)
    return simple_rms_norm(out)
