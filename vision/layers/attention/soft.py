"""SOFT (softmax-free transformer): K = Q scaled by D^-1/4, Gaussian-kernel attention through Nyström landmarks
pooled from Q by a strided conv + LayerNorm + GELU, plus a per-head depth-wise conv of V."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tokens import TokenLayout, grid_to_tokens, tokens_to_grid
from .base import KernelAttention


class SoftAttention(KernelAttention):
    kind = "soft"
    qkv_parts = 2  # q and v: SOFT's K is Q, so a softmax checkpoint's k third is dropped (adapt_state_dict)
    uses_grid = True  # landmark pooling and DWConv(V) over the token grid

    def __init__(self, dim: int, num_heads: int = 8, *args, landmark_ratio: int = 1, v_conv_size: int = 3, **kw):
        super().__init__(dim, num_heads, *args, **kw)
        dd = {"device": kw.get("device"), "dtype": kw.get("dtype")}
        d = self.head_dim
        self.landmark_ratio = landmark_ratio
        self.landmark_conv = nn.Conv2d(d, d, landmark_ratio, stride=landmark_ratio, bias=False, **dd)
        self.landmark_norm = nn.LayerNorm(d, **dd)
        self.v_conv = nn.Conv2d(
            num_heads, num_heads, v_conv_size, padding=v_conv_size // 2, groups=num_heads, bias=False, **dd
        )

    def adapt_state_dict(self, state: dict, prefix: str) -> None:
        """Keep only the q and v thirds of a softmax checkpoint's qkv (SOFT's K is Q)."""
        for name in ("qkv.weight", "qkv.bias"):
            value = state.get(prefix + name)
            if value is not None and value.shape[0] == 3 * self.proj.in_features:
                q, _, v = value.chunk(3, dim=0)
                state[prefix + name] = torch.cat([q, v], dim=0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.adapt_state_dict(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, N, _ = x.shape
        q, v = self.qkv(x).reshape(B, N, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q = q * self.head_dim**-0.25
        return self.q_norm(q), self.k_norm(q), v

    def kernel_options(self, q: Tensor, k: Tensor, v: Tensor, layout: TokenLayout) -> dict[str, Any]:
        return {"landmarks": self._landmarks(q, layout)}

    def add_to_heads(self, o: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
        return o + self._v_conv(v, layout)

    def _landmarks(self, q: Tensor, layout: TokenLayout) -> Tensor:
        """Per head, a strided conv over the grid of (scaled) queries, LayerNorm, GELU: [B, H, m, D]."""
        B, H, N, D = q.shape
        per_head = layout.repeated(H)
        grid = tokens_to_grid(q[:, :, layout.prefix :].flatten(0, 1), per_head)  # [B·H, D, h, w]
        h, w = layout.hw
        ratio = min(self.landmark_ratio, h, w)
        weight = self.landmark_conv.weight
        if ratio != self.landmark_ratio:  # grid smaller than the pooling window: average the kernel down
            weight = F.adaptive_avg_pool2d(weight, ratio) * (self.landmark_ratio / ratio) ** 2
        pooled = F.conv2d(grid, weight, stride=ratio)  # [B·H, D, h', w']
        landmarks = self.landmark_norm(pooled.flatten(2).transpose(1, 2))
        return F.gelu(landmarks).unflatten(0, (B, H))

    def _v_conv(self, v: Tensor, layout: TokenLayout) -> Tensor:
        """DWConv(V): one k×k kernel per head, shared by the head's channels; prefix tokens get none."""
        B, H, N, D = v.shape
        tokens = v[:, :, layout.prefix :].permute(0, 3, 2, 1).flatten(0, 1)  # [B·D, n, H]
        per_channel = layout.repeated(D)
        conv = grid_to_tokens(self.v_conv(tokens_to_grid(tokens, per_channel)), per_channel)  # [B·D, n, H]
        conv = conv.unflatten(0, (B, D)).permute(0, 3, 2, 1)
        return F.pad(conv, (0, 0, layout.prefix, 0))
