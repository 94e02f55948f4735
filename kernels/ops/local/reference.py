"""local: TransNormer's DiagAttention, softmax attention inside contiguous blocks of block_size tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def local_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, scale: float, block_size: int) -> Tensor:
    """Pads N to a multiple of the block, attends within each block (the last may be shorter: its
    padded keys are masked), and drops the padded queries."""
    B, H, N, _ = q.shape
    bs = min(block_size, N)
    pad = (-N) % bs
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    blocks = (N + pad) // bs
    qb, kb, vb = (t.reshape(B, H, blocks, bs, t.shape[-1]) for t in (q, k, v))
    real_key = (torch.arange(blocks * bs, device=q.device) < N).view(blocks, 1, bs)
    allowed = real_key
    if causal:
        allowed = allowed & torch.ones(bs, bs, dtype=torch.bool, device=q.device).tril()
    out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=allowed, scale=scale)
    return out.reshape(B, H, blocks * bs, -1)[:, :, :N]
