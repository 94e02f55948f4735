"""TransNormer's SimpleRMSNorm, y = x / (‖x‖/√n + eps), as a row-wise Triton kernel with its backward."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import once_differentiable

from .triton_utils import block_dim, load_tile, new_empty, store_tile

EPS = 1e-6


@triton.jit
def _rms_norm_fwd(X, Y, ROWS, N, eps, BLOCK_ROWS: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK)
    x = load_tile(X, rows, cols, N, 1, ROWS, N).to(tl.float32)
    rms = tl.sqrt(tl.sum(x * x, 1) / N)
    store_tile(Y, rows, cols, N, 1, ROWS, N, x / (rms + eps)[:, None])


@triton.jit
def _rms_norm_bwd(X, DY, DX, ROWS, N, eps, BLOCK_ROWS: tl.constexpr, BLOCK: tl.constexpr):
    """dx = c·dy − c²(dy·x)·x/(n·rms), c = 1/(rms + eps); the second term vanishes with x (rms = 0)."""
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK)
    x = load_tile(X, rows, cols, N, 1, ROWS, N).to(tl.float32)
    dy = load_tile(DY, rows, cols, N, 1, ROWS, N).to(tl.float32)
    rms = tl.sqrt(tl.sum(x * x, 1) / N)
    c = 1.0 / (rms + eps)
    proj = tl.where(rms > 0, tl.sum(dy * x, 1) * c * c / (N * tl.maximum(rms, 1e-30)), 0.0)
    dx = c[:, None] * dy - proj[:, None] * x
    store_tile(DX, rows, cols, N, 1, ROWS, N, dx)


def _launch(kernel, *tensors: Tensor, n: int) -> None:
    rows = tensors[0].numel() // n
    block = block_dim(n)
    block_rows = max(1, min(64, 4096 // block))
    kernel[(triton.cdiv(rows, block_rows),)](*tensors, rows, n, EPS, BLOCK_ROWS=block_rows, BLOCK=block)


class SimpleRMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = x.contiguous()
        y = new_empty(*x.shape, like=x)
        _launch(_rms_norm_fwd, x, y, n=x.shape[-1])
        ctx.save_for_backward(x)
        return y

    @staticmethod
    @once_differentiable  # a fused backward: differentiating it again raises, never gives zeros
    def backward(ctx, dy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        dx = new_empty(*x.shape, like=x)
        _launch(_rms_norm_bwd, x, dy.contiguous(), dx, n=x.shape[-1])
        return dx


def simple_rms_norm(x: Tensor) -> Tensor:
    return SimpleRMSNorm.apply(x)
