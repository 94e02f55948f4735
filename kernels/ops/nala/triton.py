"""nala on the fused path: the two-pass linear engine with NaLaFormer's norm-aware feature maps."""

from torch import Tensor

from ..common.linear import LinearAttention, rope_views


def nala_attention(q: Tensor, k: Tensor, v: Tensor, *, rope=None) -> Tensor:
    return LinearAttention.apply(q, k, v, *rope_views(rope, q), "nala", "elu1", 1.0)
