"""SOFT's Newton–Schulz iterations X ← X(2I − AX) for every head in one Triton program each, forward and
backward, instead of three PyTorch launches per iteration (and as many again for autograd's backward).

The m×m matrices (m landmarks, at most MAX_FUSED) stay on chip for all iterations; the products run in IEEE fp32
whatever the input dtype, since the pseudo-inverse amplifies rounding. The backward walks the iterations in
reverse from the stored X_i: with X' = 2X − XAX and G = dL/dX',
    dL/dX = 2G − G(AX)ᵀ − (XA)ᵀG = 2G − (GXᵀ)Aᵀ − Aᵀ(XᵀG),   dL/dA += −(XᵀG)Xᵀ.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..common.triton_utils import block_dim, load_tile, mm, store_tile
from .reference import newton_schulz_iterate

MAX_FUSED = 64  # six fp32 [m, m] tiles live at once: 64 fits on chip, 128 would spill


@triton.jit
def _tile(P, offs, M, BLOCK: tl.constexpr):
    """The M x M row-major matrix at P, zero-padded to BLOCK x BLOCK."""
    return load_tile(P, offs, offs, M, 1, M, M)


@triton.jit
def _store(P, x, offs, M):
    store_tile(P, offs, offs, M, 1, M, M, x)


@triton.jit
def _ns_forward(A, X0, XS, OUT, M, ITERS, BLOCK: tl.constexpr):
    """XS[i] = X_i for i < ITERS (the backward's inputs), OUT = X_ITERS; one program per matrix."""
    pid = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    size = M * M
    a = _tile(A + pid * size, offs, M, BLOCK)
    x = _tile(X0 + pid * size, offs, M, BLOCK)
    two_eye = tl.where((offs[:, None] == offs[None, :]) & (offs[:, None] < M), 2.0, 0.0)
    for i in range(ITERS):
        _store(XS + (pid * ITERS + i) * size, x, offs, M)
        x = mm(x, two_eye - mm(a, x, "ieee"), "ieee")  # [m, m] @ [m, m], twice
    _store(OUT + pid * size, x, offs, M)


@triton.jit
def _ns_backward(A, XS, G, DA, DX0, M, ITERS, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    size = M * M
    a = _tile(A + pid * size, offs, M, BLOCK)
    g = _tile(G + pid * size, offs, M, BLOCK)
    at = tl.trans(a)
    da = tl.zeros([BLOCK, BLOCK], tl.float32)
    for j in range(ITERS):
        xt = tl.trans(_tile(XS + (pid * ITERS + ITERS - 1 - j) * size, offs, M, BLOCK))
        u = mm(xt, g, "ieee")  # Xᵀ G: [m, m] @ [m, m]
        w = mm(g, xt, "ieee")  # G Xᵀ: [m, m] @ [m, m]
        da -= mm(u, xt, "ieee")  # Xᵀ G Xᵀ: [m, m] @ [m, m]
        g = 2.0 * g - mm(w, at, "ieee") - mm(at, u, "ieee")  # G(AX)ᵀ = G Xᵀ Aᵀ, (XA)ᵀG = Aᵀ Xᵀ G: [m, m] @ [m, m]
    _store(DA + pid * size, da, offs, M)
    _store(DX0 + pid * size, g, offs, M)


class NewtonSchulz(torch.autograd.Function):
    """X_iters from A [..., m, m] and the first guess X0, both fp32; differentiable in A and X0."""

    @staticmethod
    def forward(ctx, a: Tensor, x0: Tensor, iters: int) -> Tensor:
        m = a.shape[-1]
        a_rows, x0_rows = (t.contiguous().reshape(-1, m, m) for t in (a, x0))
        count = a_rows.shape[0]
        states = torch.empty(count, max(iters, 1), m, m, device=a.device, dtype=torch.float32)
        out = torch.empty_like(a_rows)
        _ns_forward[(count,)](a_rows, x0_rows, states, out, m, iters, BLOCK=block_dim(m), num_warps=8)
        ctx.save_for_backward(a_rows, states)
        ctx.iters, ctx.shape = iters, a.shape
        return out.reshape(a.shape)

    @staticmethod
    def backward(ctx, grad: Tensor):
        a_rows, states = ctx.saved_tensors
        m = a_rows.shape[-1]
        g_rows = grad.contiguous().reshape(-1, m, m).float()
        da, dx0 = torch.empty_like(a_rows), torch.empty_like(a_rows)
        # fp32 FMA products keep their operands in registers: at m = 64 (sm_90) the backward spills 13 KB with 8 warps,
        # 3 KB with 16; the forward 488 bytes with 8
        grid = (a_rows.shape[0],)
        _ns_backward[grid](a_rows, states, g_rows, da, dx0, m, ctx.iters, BLOCK=block_dim(m), num_warps=16)
        return da.reshape(ctx.shape), dx0.reshape(ctx.shape), None


def newton_schulz(a: Tensor, x0: Tensor, iters: int) -> Tensor:
    """The fused iterations where m <= MAX_FUSED, PyTorch's otherwise (same iterations, same result)."""
    if a.shape[-1] > MAX_FUSED or iters == 0:
        return newton_schulz_iterate(a, x0, iters)
    return NewtonSchulz.apply(a, x0, iters)


__all__ = ["MAX_FUSED", "NewtonSchulz", "newton_schulz"]
