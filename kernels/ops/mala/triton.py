"""mala on the fused path: the two-pass linear engine with MALA's magnitude-aware output."""

from torch import Tensor

from ..common.linear import LinearAttention, rope_views


def mala_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float, rope=None) -> Tensor:
    return LinearAttention.apply(q, k, v, *rope_views(rope, q), "mala", "elu1", scale)
