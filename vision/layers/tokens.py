"""Where tokens sit on the image grid: prefix tokens (class, registers) first, then grid tokens row-major,
all of them or, under MAE-style masking, a kept subset per sample. Convolutions over tokens
(LePE, landmark pooling, DWConv(V)) and 2-D RoPE read positions from here."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class TokenLayout:
    hw: tuple[int, int]
    prefix: int = 0
    keep: Tensor | None = None  # [B, n] indices into the h·w grid of the grid tokens present, in order

    def repeated(self, times: int) -> TokenLayout:
        """The layout for a batch whose samples are each repeated `times` times in a row (heads, channels)."""
        keep = None if self.keep is None else self.keep.repeat_interleave(times, dim=0)
        return TokenLayout(self.hw, self.prefix, keep)

    @property
    def grid_tokens(self) -> int:
        return self.hw[0] * self.hw[1] if self.keep is None else self.keep.shape[1]


def infer_layout(num_tokens: int, prefix: int) -> TokenLayout:
    """A square grid after `prefix` tokens (plain ViTs); other shapes must be given explicitly."""
    side = math.isqrt(num_tokens - prefix)
    if side * side != num_tokens - prefix:
        raise ValueError(
            f"x: {num_tokens} tokens with {prefix} prefix tokens do not form a square grid; pass the grid size "
            "(hw=(h, w)) to the attention layer for non-square inputs"
        )
    return TokenLayout((side, side), prefix)


def tokens_to_grid(x: Tensor, layout: TokenLayout) -> Tensor:
    """Grid tokens [B, n, C] -> [B, C, h, w]; positions without a token (masked) are zero."""
    B, n, C = x.shape
    h, w = layout.hw
    if layout.keep is None:
        return x.transpose(1, 2).reshape(B, C, h, w)
    grid = x.new_zeros(B, h * w, C)
    grid.scatter_(1, layout.keep[..., None].expand(B, n, C), x)
    return grid.transpose(1, 2).reshape(B, C, h, w)


def grid_to_tokens(grid: Tensor, layout: TokenLayout) -> Tensor:
    """[B, C, h, w] -> grid tokens [B, n, C] at the layout's positions."""
    B, C = grid.shape[:2]
    flat = grid.flatten(2).transpose(1, 2)
    if layout.keep is None:
        return flat
    return flat.gather(1, layout.keep[..., None].expand(-1, -1, C))


def grid_positions(layout: TokenLayout, device: torch.device) -> Tensor:
    """(row, col) of every grid token: [1 or B, n, 2]."""
    h, w = layout.hw
    rows, cols = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    pos = torch.stack([rows.flatten(), cols.flatten()], -1)[None]
    if layout.keep is None:
        return pos
    return pos.expand(layout.keep.shape[0], -1, -1).gather(1, layout.keep[..., None].expand(-1, -1, 2))
