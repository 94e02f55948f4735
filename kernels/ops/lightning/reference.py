"""lightning: Lightning Attention (TransNormerLLM), O_t = Σ_s λ_h^{|t−s|}(q_t·k_s)v_s, λ_h = exp(−slope_h)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..shared import chunked_decay_causal


def alibi_slopes(num_heads: int) -> list[float]:
    """ALiBi's per-head slopes 2^(−8(h+1)/H), interleaved from the next power of two when H is not one."""

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (h + 1) for h in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_two(num_heads)
    closest = 2 ** math.floor(math.log2(num_heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: num_heads - closest]


def lightning_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool, slopes: Tensor | None, chunk_size: int
) -> Tensor:
    """Causal: s ≤ t only (the paper's form). Non-causal: two-sided decay, our extension for images,
    computed as the causal part plus the strictly anti-causal part on the reversed sequence.
    Cross-attention (Nq ≠ Nk) places both sequences at positions 0, 1, ... by zero-padding the shorter."""
    if slopes is None:
        slopes = torch.tensor(alibi_slopes(q.shape[1]), dtype=q.dtype, device=q.device)
    if causal:
        return chunked_decay_causal(q, k, v, slopes, chunk_size)
    nq, nk = q.shape[-2], k.shape[-2]
    n = max(nq, nk)
    if nq != nk:
        q = F.pad(q, (0, 0, 0, n - nq))
        k, v = F.pad(k, (0, 0, 0, n - nk)), F.pad(v, (0, 0, 0, n - nk))
    forward = chunked_decay_causal(q, k, v, slopes, chunk_size)
    q_rev, k_rev, v_rev = (t.flip(-2) for t in (q, k, v))
    backward = chunked_decay_causal(q_rev, k_rev, v_rev, slopes, chunk_size, strict=True).flip(-2)
    return (forward + backward)[:, :, :nq]
