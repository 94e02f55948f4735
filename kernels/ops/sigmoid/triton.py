"""sigmoid on the fused path: the flash-tiling engine with independent sigmoid weights (FlashSigmoid)."""

from torch import Tensor

from ..common.flash import FlashAttention


def sigmoid_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, scale: float, bias: float) -> Tensor:
    return FlashAttention.apply(q, k, v, "sigmoid", causal, scale, bias, 0)
