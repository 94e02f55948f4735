"""Attention whose kernel weighs tokens one by one: softmax (timm's Attention exactly), sigmoid, local (blocks)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from .base import KernelAttention


class SoftmaxAttention(KernelAttention):
    """timm's Attention (qkv, q_norm, k_norm, norm, proj): timm checkpoints load strictly and give timm's outputs."""

    kind = "softmax"
    has_weights_to_drop = True

    def attend(self, q: Tensor, k: Tensor, v: Tensor, options: dict[str, Any]) -> Tensor:
        if self.training and self.attn_drop.p > 0:  # the kernels take no dropout; SDPA does
            return F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p)
        return super().attend(q, k, v, options)


class SigmoidAttention(KernelAttention):
    """FlashSigmoid: σ(s·QKᵀ + b)V, with timm's Attention's parameters."""

    kind = "sigmoid"


class LocalAttention(KernelAttention):
    """TransNormer's DiagAttention: softmax inside contiguous blocks of tokens (`block_size`)."""

    kind = "local"
