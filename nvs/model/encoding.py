"""Fixed encodings: frequency encodings of scalars and directions, 2-D sin-cos token embeddings."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def frequency_encoding(x: Tensor, frequencies: int) -> Tensor:
    """[..., d] -> [..., d·(1 + 2F)]: x, then sin(2^k π x) and cos(2^k π x) for k < F."""
    scales = (2.0 ** torch.arange(frequencies, device=x.device, dtype=x.dtype)) * math.pi
    angles = x[..., None] * scales  # [..., d, F]
    return torch.cat([x, torch.sin(angles).flatten(-2), torch.cos(angles).flatten(-2)], dim=-1)


def sincos_2d(rows: int, cols: int, dim: int, temperature: float = 10000.0) -> Tensor:
    """[rows·cols, dim] sin-cos embedding of a row-major grid (MAE's): half the channels for the row, half for
    the column."""
    if dim % 4:
        raise ValueError(f"dim: a 2-D sin-cos embedding needs a multiple of 4, got {dim}")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    r, c = torch.meshgrid(
        torch.arange(rows, dtype=torch.float32), torch.arange(cols, dtype=torch.float32), indexing="ij"
    )
    out = []
    for pos in (r.flatten(), c.flatten()):
        angles = pos[:, None] * omega[None]
        out += [torch.sin(angles), torch.cos(angles)]
    return torch.cat(out, dim=1)
