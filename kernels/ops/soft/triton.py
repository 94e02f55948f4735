"""SOFT in Triton: the Gaussian kernel G(x, l) = exp(−‖x−l‖²/2) fused with its products.

O = G(Q,L)·W with W = pinv(G(L,L))·G(K,L)ᵀV. The N-sized work runs in three kernels, each used twice:
  reduce: Σ_r G(x_r, L)ᵀ y_r          (T = G(K,L)ᵀV forward; dW = G(Q,L)ᵀdO backward)
  apply:  G(x_r, L)·w for every row   (O = G(Q,L)W forward; dV = G(K,L)dT backward)
  grad:   E = (y zᵀ)∘G(x, L); dx = E·L − rowsum(E)·x; dL = Σ_r Eᵀx − colsum(E)·L
The m×m landmark work (segment means, G(L,L), Newton–Schulz) is tiny and stays in PyTorch autograd.
Squared distances are summed from differences in fp32 for fp32 and fp16 inputs; for bf16 inputs they are
‖x‖² + ‖l‖² − 2x·l in fp32 with the cross term on the tensor cores, exact to fp32 (see _gauss_tile).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..common.triton_utils import (
    block_dim,
    dot_mode,
    load_tile,
    mm,
    new_empty,
    reduction_splits,
    round_mantissa,
    store_tile,
    strides,
)
from .newton_schulz import newton_schulz
from .reference import gaussian_kernel, newton_schulz_start


@triton.jit
def _gauss_tile(
    X,
    L,
    x_off,
    l_off,
    rows,
    lms,
    sxn,
    sxd,
    sln,
    sld,
    N,
    M,
    D,
    DOT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """G(x_r, l_m) for a tile of rows and all landmarks; zero outside the rows and landmarks that exist."""
    if DOT == "bf16" or DOT == "bf16_rounded":
        # bf16 inputs: ‖x‖² + ‖l‖² − 2x·l in fp32 with x·l on the tensor cores. x holds inputs, exact in bf16; l is
        # split into a bf16 head and tail, so its rounding (2^-16 relative) stays far below fp32's cancellation in
        # the expansion (it is 16-bit arithmetic that cancels badly there)
        offs_d = tl.arange(0, BLOCK_D)
        x = load_tile(X + x_off, rows, offs_d, sxn, sxd, N, D).to(tl.float32)
        lm = load_tile(L + l_off, lms, offs_d, sln, sld, M, D).to(tl.float32)
        head = round_mantissa(lm, 16)
        cross = mm(x, tl.trans(head), DOT) + mm(x, tl.trans(lm - head), DOT)  # [N, D] @ [D, L], twice
        dist = tl.maximum(tl.sum(x * x, 1)[:, None] + tl.sum(lm * lm, 1)[None, :] - 2.0 * cross, 0.0)
    else:
        # fp32 and fp16 inputs: squared differences summed feature by feature (an IEEE product for the cross term
        # would spill 32 KB and ask for 147 KB of shared memory in the gradient kernel)
        dist = tl.zeros([BLOCK_N, BLOCK_L], tl.float32)
        for d in range(0, D):
            xc = tl.load(X + x_off + rows * sxn + d * sxd, mask=rows < N, other=0.0).to(tl.float32)
            lc = tl.load(L + l_off + lms * sln + d * sld, mask=lms < M, other=0.0).to(tl.float32)
            diff = xc[:, None] - lc[None, :]
            dist += diff * diff
    return tl.where((rows[:, None] < N) & (lms[None, :] < M), tl.exp(-0.5 * dist), 0.0)


@triton.jit
def _reduce(
    X,
    L,
    Y,
    PART,
    sxb,
    sxh,
    sxn,
    sxd,
    slb,
    slh,
    sln,
    sld,
    syb,
    syh,
    syn,
    syd,
    H,
    N,
    M,
    D,
    DY,
    SPLITS,
    DOT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_DY: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid_bh = tl.program_id(0)
    split = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    lms = tl.arange(0, BLOCK_L)
    offs_dy = tl.arange(0, BLOCK_DY)
    acc = tl.zeros([BLOCK_L, BLOCK_DY], tl.float32)
    for start in range(split * BLOCK_N, N, SPLITS * BLOCK_N):
        rows = start + tl.arange(0, BLOCK_N)
        g = _gauss_tile(
            X,
            L,
            b * sxb + h * sxh,
            b * slb + h * slh,
            rows,
            lms,
            sxn,
            sxd,
            sln,
            sld,
            N,
            M,
            D,
            DOT,
            BLOCK_N,
            BLOCK_L,
            BLOCK_D,
        )
        y = load_tile(Y + (b * syb + h * syh), rows, offs_dy, syn, syd, N, DY).to(tl.float32)
        acc += mm(tl.trans(g), y, DOT)
    tl.store(PART + (pid_bh * SPLITS + split) * BLOCK_L * BLOCK_DY + lms[:, None] * BLOCK_DY + offs_dy[None, :], acc)


@triton.jit
def _apply(
    X,
    L,
    W,
    OUT,
    sxb,
    sxh,
    sxn,
    sxd,
    slb,
    slh,
    sln,
    sld,
    swb,
    swh,
    swm,
    swd,
    sob,
    soh,
    son,
    sod,
    H,
    N,
    M,
    D,
    DW,
    DOT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_DW: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    lms = tl.arange(0, BLOCK_L)
    offs_dw = tl.arange(0, BLOCK_DW)
    g = _gauss_tile(
        X,
        L,
        b * sxb + h * sxh,
        b * slb + h * slh,
        rows,
        lms,
        sxn,
        sxd,
        sln,
        sld,
        N,
        M,
        D,
        DOT,
        BLOCK_N,
        BLOCK_L,
        BLOCK_D,
    )
    w = load_tile(W + (b * swb + h * swh), lms, offs_dw, swm, swd, M, DW).to(tl.float32)
    out = mm(g, w, DOT)
    store_tile(OUT + b * sob + h * soh, rows, offs_dw, son, sod, N, DW, out)


@triton.jit
def _grad(
    X,
    L,
    Y,
    Z,
    DX,
    DL_PART,
    sxb,
    sxh,
    sxn,
    sxd,
    slb,
    slh,
    sln,
    sld,
    syb,
    syh,
    syn,
    syd,
    szb,
    szh,
    szm,
    szd,
    H,
    N,
    M,
    D,
    DY,
    SPLITS,
    DOT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DY: tl.constexpr,
):
    pid_bh = tl.program_id(0)
    split = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    lms = tl.arange(0, BLOCK_L)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dy = tl.arange(0, BLOCK_DY)
    l_off = b * slb + h * slh
    lm = load_tile(L + l_off, lms, offs_d, sln, sld, M, D).to(tl.float32)
    z = load_tile(Z + (b * szb + h * szh), lms, offs_dy, szm, szd, M, DY).to(tl.float32)
    dl = tl.zeros([BLOCK_L, BLOCK_D], tl.float32)
    for start in range(split * BLOCK_N, N, SPLITS * BLOCK_N):
        rows = start + tl.arange(0, BLOCK_N)
        x_off = b * sxb + h * sxh
        g = _gauss_tile(X, L, x_off, l_off, rows, lms, sxn, sxd, sln, sld, N, M, D, DOT, BLOCK_N, BLOCK_L, BLOCK_D)
        x = load_tile(X + x_off, rows, offs_d, sxn, sxd, N, D).to(tl.float32)
        y = load_tile(Y + (b * syb + h * syh), rows, offs_dy, syn, syd, N, DY).to(tl.float32)
        e = mm(y, tl.trans(z), DOT) * g  # dL/dG ∘ G, [rows, landmarks]
        dx = mm(e, lm, DOT) - tl.sum(e, 1)[:, None] * x
        dl += mm(tl.trans(e), x, DOT) - tl.sum(e, 0)[:, None] * lm
        store_tile(DX + x_off, rows, offs_d, sxn, sxd, N, D, dx)
    tl.store(DL_PART + (pid_bh * SPLITS + split) * BLOCK_L * BLOCK_D + lms[:, None] * BLOCK_D + offs_d[None, :], dl)


def _blocks(n: int, d: int, m: int) -> tuple[int, int, int]:
    block_l = block_dim(m)
    return (64 if block_l <= 64 and d <= 64 else 32), block_l, block_dim(d)


def _reduce_rows(x: Tensor, lm: Tensor, y: Tensor) -> Tensor:
    """Σ_r G(x_r, L)ᵀ y_r -> [B, H, m, Dy] in fp32."""
    B, H, N, D = x.shape
    M, DY = lm.shape[-2], y.shape[-1]
    block_n, block_l, block_d = _blocks(N, D, M)
    block_dy = block_dim(DY)
    splits = reduction_splits(B * H, triton.cdiv(N, block_n), x.device)
    part = torch.empty(B * H, splits, block_l, block_dy, device=x.device, dtype=torch.float32)
    _reduce[(B * H, splits)](
        x,
        lm,
        y,
        part,
        *strides(x),
        *strides(lm),
        *strides(y),
        H,
        N,
        M,
        D,
        DY,
        splits,
        DOT=dot_mode(x, bounded=False),
        BLOCK_N=block_n,
        BLOCK_L=block_l,
        BLOCK_DY=block_dy,
        BLOCK_D=block_d,
    )
    return part.sum(1)[:, :M, :DY].reshape(B, H, M, DY)


def _apply_rows(x: Tensor, lm: Tensor, w: Tensor, dtype: torch.dtype) -> Tensor:
    """G(x_r, L)·w for every row -> [B, H, N, Dw] in `dtype`."""
    B, H, N, D = x.shape
    M, DW = lm.shape[-2], w.shape[-1]
    block_n, block_l, block_d = _blocks(N, D, M)
    out = new_empty(B, H, N, DW, like=x, dtype=dtype)
    _apply[(triton.cdiv(N, block_n), B * H)](
        x,
        lm,
        w,
        out,
        *strides(x),
        *strides(lm),
        *strides(w),
        *strides(out),
        H,
        N,
        M,
        D,
        DW,
        DOT=dot_mode(x, bounded=False),
        BLOCK_N=block_n,
        BLOCK_L=block_l,
        BLOCK_DW=block_dim(DW),
        BLOCK_D=block_d,
    )
    return out


def _grad_rows(x: Tensor, lm: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of Σ_r y_r·(G(x_r, L) z) with respect to x and L."""
    B, H, N, D = x.shape
    M, DY = lm.shape[-2], y.shape[-1]
    block_n, block_l, block_d = _blocks(N, D, M)
    splits = reduction_splits(B * H, triton.cdiv(N, block_n), x.device)
    x = x.contiguous()
    dx = new_empty(*x.shape, like=x)
    part = torch.empty(B * H, splits, block_l, block_d, device=x.device, dtype=torch.float32)
    _grad[(B * H, splits)](
        x,
        lm,
        y,
        z,
        dx,
        part,
        *strides(x),
        *strides(lm),
        *strides(y),
        *strides(z),
        H,
        N,
        M,
        D,
        DY,
        splits,
        DOT=dot_mode(x, bounded=False),
        BLOCK_N=block_n,
        BLOCK_L=block_l,
        BLOCK_D=block_d,
        BLOCK_DY=block_dim(DY),
        num_warps=8,  # with 4, ptxas spilled 50,304 bytes in fp32 at D = 64; with 8, 1,672
    )
    return dx, part.sum(1)[:, :M, :D].reshape(B, H, M, D)


class GaussReduce(torch.autograd.Function):
    """T = G(x, L)ᵀ y."""

    @staticmethod
    def forward(ctx, x, lm, y):
        ctx.save_for_backward(x, lm, y)
        return _reduce_rows(x, lm, y)

    @staticmethod
    @once_differentiable  # a fused backward: differentiating it again raises, never gives zeros
    def backward(ctx, dt):
        x, lm, y = ctx.saved_tensors
        dt = dt.contiguous()
        dy = _apply_rows(x, lm, dt, y.dtype)
        dx, dl = _grad_rows(x, lm, y, dt)
        return dx, dl, dy


class GaussApply(torch.autograd.Function):
    """O = G(x, L) w."""

    @staticmethod
    def forward(ctx, x, lm, w):
        ctx.save_for_backward(x, lm, w)
        return _apply_rows(x, lm, w, x.dtype)

    @staticmethod
    @once_differentiable  # a fused backward: differentiating it again raises, never gives zeros
    def backward(ctx, dout):
        x, lm, w = ctx.saved_tensors
        dw = _reduce_rows(x, lm, dout)
        dx, dl = _grad_rows(x, lm, dout, w)
        return dx, dl, dw


MAX_LANDMARKS = 128


def unfit_reason(q: Tensor, v: Tensor, options: dict, causal: bool) -> str | None:
    """The kernels hold every landmark of a row tile at once."""
    given = options["landmarks"]
    m = min(options["num_landmarks"], v.shape[-2]) if given is None else given.shape[-2]
    return f"{m} landmarks: the kernel holds at most {MAX_LANDMARKS}" if m > MAX_LANDMARKS else None


def block_means(k: Tensor, num_landmarks: int) -> Tensor:
    """The reference's segment means (torch.tensor_split order) in two reductions instead of one per segment:
    tensor_split gives the first N mod m segments one key more than the rest."""
    n = k.shape[-2]
    m = min(num_landmarks, n)
    size, longer = divmod(n, m)
    head = k[..., : longer * (size + 1), :].unflatten(-2, (longer, size + 1)).mean(-2)
    tail = k[..., longer * (size + 1) :, :].unflatten(-2, (m - longer, size)).mean(-2)
    return torch.cat((head, tail), dim=-2)


def soft_attention(
    q: Tensor, k: Tensor, v: Tensor, *, num_landmarks: int, newton_iters: int, landmarks: Tensor | None
) -> Tensor:
    """Landmarks and G(L,L) in fp32 PyTorch, the Newton–Schulz pinv in one kernel per pass (m <= 64), every
    N-sized product fused."""
    if landmarks is None:
        lm = block_means(k.float(), num_landmarks)
    else:
        lm = landmarks.float().expand(*k.shape[:2], *landmarks.shape[-2:])
    gram = gaussian_kernel(lm, lm)
    inverse = newton_schulz(gram, newton_schulz_start(gram), newton_iters)
    t = GaussReduce.apply(k, lm, v)
    return GaussApply.apply(q, lm, inverse @ t)
