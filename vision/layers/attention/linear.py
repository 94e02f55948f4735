"""Linear attention layers: NaLaFormer (nala), MALA (mala), TransNormer (norm), TransNormerLLM (lightning).

nala: q, k, v and a gate g; 5×5 depth-wise LePE on V; LayerNorm(o + lepe)·SiLU(g); RoPE inside the kernel.
mala: q, k, v and an output gate; LePE; (o + lepe)·gate; RoPE inside the kernel.
norm: NormAttention (RMSNorm inside the kernel).
lightning: SiLU on q, k, v; two-sided decay over the token sequence (ALiBi rates × `decay_scale`); LayerNorm,
then a sigmoid output gate.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import kernels

from ..tokens import TokenLayout, grid_to_tokens, tokens_to_grid
from .base import KernelAttention


class LePE(nn.Conv2d):
    """Locally-enhanced position encoding: a k×k depth-wise conv of V over the grid; prefix tokens get none."""

    def __init__(self, dim: int, kernel_size: int = 5, device=None, dtype=None):
        super().__init__(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim, device=device, dtype=dtype)

    def forward(self, v: Tensor, layout: TokenLayout) -> Tensor:
        """v [B, H, N, D] -> the grid tokens' encodings [B, n, H·D] (v's token layout is a view: no copy)."""
        B, _, N, _ = v.shape
        v_tokens = v.transpose(1, 2).flatten(2)[:, layout.prefix :]
        return grid_to_tokens(super().forward(tokens_to_grid(v_tokens, layout)), layout)

    def add_to(self, o: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
        """o [B, N, C] plus the encodings of its grid tokens, added in place (o must be the caller's own tensor):
        no zero-padded copy for the prefix tokens."""
        lepe = self(v, layout)
        if not layout.prefix:
            return o + lepe
        o[:, layout.prefix :] += lepe
        return o


class GatedLePEAttention(KernelAttention):
    """The shared part of NaLa and MALA: RoPE inside the kernel, a LePE of v added to the output in place and an
    output gate computed from x."""

    rope_in_kernel = True
    finish_in_place = True  # LePE
    uses_grid = True  # LePE convolves over the token grid

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, *args, device=None, dtype=None, **kw):
        super().__init__(dim, num_heads, qkv_bias, *args, device=device, dtype=dtype, **kw)
        self.gate = nn.Linear(dim, dim, bias=qkv_bias, device=device, dtype=dtype)
        self.lepe = LePE(dim, device=device, dtype=dtype)


class NaLaAttention(GatedLePEAttention):
    kind = "nala"

    def __init__(self, dim: int, *args, device=None, dtype=None, **kw):
        super().__init__(dim, *args, device=device, dtype=dtype, **kw)
        self.out_norm = nn.LayerNorm(dim, device=device, dtype=dtype)

    def finish(self, o: Tensor, x: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
        return self.out_norm(self.lepe.add_to(o, v, layout)) * F.silu(self.gate(x))


class MALAAttention(GatedLePEAttention):
    kind = "mala"

    def finish(self, o: Tensor, x: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
        return self.lepe.add_to(o, v, layout) * self.gate(x)


class NormAttention(KernelAttention):
    kind = "norm"


class LightningAttention(KernelAttention):
    kind = "lightning"

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, *args, decay_scale: float = 1.0, **kw):
        super().__init__(dim, num_heads, qkv_bias, *args, **kw)
        device, dtype = kw.get("device"), kw.get("dtype")
        self.gate = nn.Linear(dim, dim, bias=qkv_bias, device=device, dtype=dtype)
        self.out_norm = nn.LayerNorm(dim, device=device, dtype=dtype)
        # ALiBi decay rates, scaled down in deeper layers as in TransNormerLLM
        slopes = torch.tensor(kernels.alibi_slopes(num_heads), dtype=torch.float32, device=device) * decay_scale
        self.register_buffer("slopes", slopes, persistent=False)

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = super().heads(x)
        return F.silu(q), F.silu(k), F.silu(v)

    def kernel_options(self, q: Tensor, k: Tensor, v: Tensor, layout: TokenLayout) -> dict[str, Any]:
        return {} if "slopes" in self.options else {"slopes": self.slopes}

    def finish(self, o: Tensor, x: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
        return self.out_norm(o) * torch.sigmoid(self.gate(x))
