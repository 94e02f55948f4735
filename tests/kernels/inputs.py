"""Random attention inputs for tests."""

from __future__ import annotations

import torch


def make_qkv(kind, B, H, nq, nk, d, dv, *, dtype=torch.float64, seed=0, requires_grad=False):
    """Standard-normal q, k, v; SOFT's caller pre-scales q and k by D^-1/4, so the tests do too."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, nq, d, generator=g, dtype=torch.float64)
    k = torch.randn(B, H, nk, d, generator=g, dtype=torch.float64)
    v = torch.randn(B, H, nk, dv, generator=g, dtype=torch.float64)
    if kind == "soft":
        q, k = q * d**-0.25, k * d**-0.25
    return tuple(t.to(dtype).requires_grad_(requires_grad) for t in (q, k, v))


def rope_angles(n, d, seed=1):
    """Random RoPE angles θ [n, d/2] and the (sin, cos) pair kernels.attention takes ([n, d], repeated per pair)."""
    theta = torch.rand(n, d // 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 6.0
    sin = torch.sin(theta).repeat_interleave(2, dim=-1)
    cos = torch.cos(theta).repeat_interleave(2, dim=-1)
    return theta, (sin, cos)
