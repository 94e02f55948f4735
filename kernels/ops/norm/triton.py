"""norm (TransNormer NormAttention) on the fused path. Non-causal: the two-pass linear engine with φ and the
RMSNorm fused. Causal: φ in PyTorch, the chunked scan with no decay, then the RMSNorm kernel."""

import torch
from torch import Tensor

from ..common import linear
from ..common.chunk_scan import DecayedLinearAttention
from ..common.linear import LinearAttention
from ..common.rms_norm import simple_rms_norm
from .reference import FEATURE_MAPS


def norm_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, feature_map: str, chunk_size: int) -> Tensor:
    """chunk_size is the reference path's memory knob; the kernels pick their own chunk length."""
    if not causal:
        return LinearAttention.apply(q, k, v, None, None, "norm", feature_map, 1.0)
    phi = FEATURE_MAPS[feature_map]
    no_decay = torch.zeros(q.shape[1], device=q.device)
    # the sum before the norm grows with N: fp16 would overflow on long sequences, so it is kept in fp32 there
    # (bf16 has fp32's range and keeps its backward on bf16 tensor cores)
    float_out = q.dtype == torch.float16
    return simple_rms_norm(DecayedLinearAttention.apply(phi(q), phi(k), v, no_decay, True, float_out)).to(q.dtype)


def unfit_reason(q: Tensor, v: Tensor, options: dict, causal: bool) -> str | None:
    """The two-pass kernel's states must fit the GPU; the causal scan's tiles always do."""
    return None if causal else linear.unfit_reason(q, v)
