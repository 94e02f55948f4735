"""2-D rotary position embedding for image tokens (NaLaFormer/MALA's construction)."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .tokens import TokenLayout, grid_positions


def rope_2d(layout: TokenLayout, head_dim: int, device: torch.device, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """(sin, cos), each [1 or B, 1, prefix + n, head_dim], in the interleaved-pair convention.

    Angles 1/base^linspace(0, 1, head_dim/4), each repeated on its feature pair: the first half of
    the features turns with the token's row, the second half with its column. Prefix tokens (no
    position) get angle 0, so RoPE leaves them unchanged.
    """
    if head_dim % 4:
        raise ValueError(f"head_dim: 2-D RoPE needs a multiple of 4, got {head_dim}")
    freqs = 1.0 / base ** torch.linspace(0, 1, head_dim // 4, device=device)
    freqs = freqs.repeat_interleave(2)  # [head_dim / 2]
    pos = grid_positions(layout, device).float()  # [b, n, 2]
    angles = torch.cat([pos[..., :1] * freqs, pos[..., 1:] * freqs], dim=-1)  # [b, n, head_dim]
    if layout.prefix:
        angles = torch.cat([angles.new_zeros(angles.shape[0], layout.prefix, head_dim), angles], dim=1)
    return torch.sin(angles)[:, None], torch.cos(angles)[:, None]


def rope_tables(layout: TokenLayout, head_dim: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """rope_2d in `dtype`, computed once per grid, prefix, head size, device and dtype for a full grid (every
    layer of a model and every call share it) and per call for a masked subset (its positions change)."""
    if layout.keep is not None or torch.compiler.is_compiling():  # a compiled graph computes (and folds) it itself
        sin, cos = rope_2d(layout, head_dim, device)
        return sin.to(dtype), cos.to(dtype)
    return _cached_tables(layout.hw, layout.prefix, head_dim, device, dtype)


@functools.lru_cache(maxsize=64)
def _cached_tables(
    hw: tuple[int, int], prefix: int, head_dim: int, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    # Built outside inference mode and autocast so training can save the tables for backward later.
    with torch.inference_mode(False), torch.no_grad(), torch.autocast(device.type, enabled=False):
        sin, cos = rope_2d(TokenLayout(hw, prefix), head_dim, device)
        return sin.to(dtype), cos.to(dtype)
