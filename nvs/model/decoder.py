"""NViST's decoder: learnable field tokens that alternately cross-attend to the image's patch tokens and
self-attend, every block modulated by adaptive LayerNorm (DiT style) on [camera distance, focal/height]."""

from __future__ import annotations

import torch
from torch import Tensor, nn

import kernels

from .encoding import frequency_encoding


class Attention(nn.Module):
    """Multi-head attention through kernels.attention; cross-attention normalises keys and values apart."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, kind: str = "softmax"):
        super().__init__()
        self.heads, self.kind = heads, kind
        self.cross = context_dim is not None
        context_dim = context_dim or dim
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(context_dim, dim)
        self.v = nn.Linear(context_dim, dim)
        if self.cross:
            self.k_norm = nn.LayerNorm(context_dim)
            self.v_norm = nn.LayerNorm(context_dim)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        return x.reshape(B, N, self.heads, C // self.heads).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.cross:
            k, v = self.k(self.k_norm(context)), self.v(self.v_norm(context))
        else:
            k, v = self.k(x), self.v(x)
        out = kernels.attention(self._split(self.q(x)), self._split(k), self._split(v), self.kind)
        return self.proj(out.transpose(1, 2).reshape(x.shape))


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DecoderBlock(nn.Module):
    """x += gate·Attn(modulate(LN(x))); x += gate·MLP(modulate(LN(x))), LayerNorms without affine."""

    def __init__(self, dim: int, heads: int, context_dim: int | None, kind: str, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = Attention(dim, heads, context_dim, kind)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: Tensor, cond: Tensor, context: Tensor | None) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond).chunk(6, dim=-1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1), context)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FieldDecoderTransformer(nn.Module):
    """Tokens = [class token, one shared learnable token repeated + fixed 2-D sin-cos positions]; even
    blocks cross-attend to the encoder tokens, odd blocks self-attend."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        context_dim: int,
        positions: Tensor,
        cross_kind: str = "softmax",
        self_kind: str = "softmax",
        cond_frequencies: int = 4,
    ):
        super().__init__()
        self.cond_frequencies = cond_frequencies
        cond_in = 2 * (1 + 2 * cond_frequencies)
        self.cond_mlp = nn.Sequential(nn.Linear(cond_in, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.field_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("positions", positions[None], persistent=False)  # [1, T, dim]
        self.blocks = nn.ModuleList(
            DecoderBlock(dim, heads, context_dim if i % 2 == 0 else None, cross_kind if i % 2 == 0 else self_kind)
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.field_token, std=0.02)

    def forward(self, context: Tensor, condition: Tensor) -> Tensor:
        """context [B, N, C_enc], condition [B, 2] = (distance, focal / height) -> tokens [B, 1 + T, dim]."""
        cond = self.cond_mlp(frequency_encoding(condition, self.cond_frequencies))
        B = context.shape[0]
        field = self.field_token + self.positions
        x = torch.cat([self.cls_token.expand(B, -1, -1), field.expand(B, -1, -1)], dim=1)
        for block in self.blocks:
            x = block(x, cond, context)
        shift, scale = self.final_modulation(cond).chunk(2, dim=-1)
        return modulate(self.norm(x), shift, scale)


__all__ = ["FieldDecoderTransformer"]
