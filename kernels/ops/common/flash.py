"""The flash-tiling engine: tiled Triton kernels for the kinds with an explicit weight per (query, key):
softmax (online max and sum), sigmoid (FlashSigmoid: independent weights, no running statistics) and
local (softmax with the block mask fused, so only the diagonal blocks are visited).

Forward keeps a query tile in registers and streams key/value tiles; backward recomputes the weights
tile by tile: one kernel accumulates dK, dV over query tiles, another dQ over key tiles (no atomics).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import once_differentiable

from .triton_utils import (
    AMPERE_SHARED_MEMORY,
    HOPPER_SHARED_MEMORY,
    LOG2E,
    block_dim,
    dot_mode,
    fp32_tiles,
    load_tile,
    mm,
    new_empty,
    seq_block,
    shared_memory_limit,
    store_tile,
    strides,
)

MODES = ("softmax", "sigmoid")  # the weights: online softmax, or independent sigmoids


@triton.jit
def _compute(x, F32: tl.constexpr):
    """Tiles stay in the input dtype for tensor-core dots, or go to fp32 where bf16 is not emulated."""
    if F32:
        x = x.to(tl.float32)
    return x


@triton.jit
def _key_range(
    start_m, NK, local_block, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, LOCAL: tl.constexpr
):
    """Key positions [lo, hi) that the query tile starting at start_m can see."""
    lo = 0
    hi = NK
    if CAUSAL:
        hi = tl.minimum(hi, start_m + BLOCK_M)
    if LOCAL:
        lo = (start_m // local_block) * local_block
        hi = tl.minimum(hi, ((start_m + BLOCK_M - 1) // local_block + 1) * local_block)
    lo = (lo // BLOCK_N) * BLOCK_N
    return lo, hi


@triton.jit
def _query_range(
    start_n, NQ, local_block, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, LOCAL: tl.constexpr
):
    """Query positions [lo, hi) that can see the key tile starting at start_n."""
    lo = 0
    hi = NQ
    if CAUSAL:
        lo = start_n
    if LOCAL:
        lo = tl.maximum(lo, (start_n // local_block) * local_block)
        hi = tl.minimum(hi, ((start_n + BLOCK_N - 1) // local_block + 1) * local_block)
    lo = (lo // BLOCK_M) * BLOCK_M
    return lo, hi


@triton.jit
def _visible(offs_m, offs_n, NK, local_block, CAUSAL: tl.constexpr, LOCAL: tl.constexpr):
    ok = offs_n[None, :] < NK
    if CAUSAL:
        ok = ok & (offs_n[None, :] <= offs_m[:, None])
    if LOCAL:
        ok = ok & ((offs_n[None, :] // local_block) == (offs_m[:, None] // local_block))
    return ok


@triton.jit
def _flash_fwd(
    Q,
    K,
    V,
    O,
    LSE,
    sqb,
    sqh,
    sqn,
    sqd,
    skb,
    skh,
    skn,
    skd,
    svb,
    svh,
    svn,
    svd,
    sob,
    soh,
    son,
    sod,
    H,
    NQ,
    NK,
    D,
    DV,
    scale,
    bias,
    local_block,
    MODE: tl.constexpr,
    CAUSAL: tl.constexpr,
    LOCAL: tl.constexpr,
    F32: tl.constexpr,
    DOT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    q = _compute(load_tile(Q + b * sqb + h * sqh, offs_m, offs_d, sqn, sqd, NQ, D), F32)
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
    lo, hi = _key_range(start_m, NK, local_block, BLOCK_M, BLOCK_N, CAUSAL, LOCAL)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = _compute(load_tile(k_base, offs_n, offs_d, skn, skd, NK, D), F32)
        v = _compute(load_tile(v_base, offs_n, offs_dv, svn, svd, NK, DV), F32)
        s = mm(q, tl.trans(k), DOT)  # [M, D] @ [D, N]
        ok = _visible(offs_m, offs_n, NK, local_block, CAUSAL, LOCAL)
        if MODE == "softmax":
            s = tl.where(ok, s * (scale * 1.4426950408889634), float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            p = tl.exp2(s - m_safe[:, None])
            alpha = tl.exp2(m_i - m_safe)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            m_i = m_new
        else:
            p = tl.where(ok, tl.sigmoid(s * scale + bias), 0.0)
        acc += mm(p, v, DOT)  # [M, N] @ [N, Dv]
    if MODE == "softmax":
        l_safe = tl.where(l_i == 0.0, 1.0, l_i)
        acc = acc / l_safe[:, None]
        tl.store(LSE + pid_bh * NQ + offs_m, m_i + tl.log2(l_safe), mask=offs_m < NQ)
    store_tile(O + b * sob + h * soh, offs_m, offs_dv, son, sod, NQ, DV, acc)


@triton.jit
def _row_dot(
    O, DO, DELTA, sob, soh, son, sod, sdb, sdh, sdn, sdd, H, N, DV, BLOCK_M: tl.constexpr, BLOCK_DV: tl.constexpr
):
    """delta_i = dO_i · O_i, the softmax backward's row correction."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_dv = tl.arange(0, BLOCK_DV)
    o = load_tile(O + b * sob + h * soh, offs_m, offs_dv, son, sod, N, DV)
    do = load_tile(DO + b * sdb + h * sdh, offs_m, offs_dv, sdn, sdd, N, DV)
    tl.store(DELTA + pid_bh * N + offs_m, tl.sum(o.to(tl.float32) * do.to(tl.float32), 1), mask=offs_m < N)


@triton.jit
def _weights_and_grad(
    q,
    k,
    v,
    do,
    lse,
    delta,
    offs_m,
    offs_n,
    NK,
    scale,
    bias,
    local_block,
    MODE: tl.constexpr,
    CAUSAL: tl.constexpr,
    LOCAL: tl.constexpr,
    DOT: tl.constexpr,
):
    """Recompute the weight tile P and the gradient of the pre-activation scores dS."""
    s = mm(q, tl.trans(k), DOT)  # [M, D] @ [D, N]
    ok = _visible(offs_m, offs_n, NK, local_block, CAUSAL, LOCAL)
    dp = mm(do, tl.trans(v), DOT)  # [M, Dv] @ [Dv, N]
    if MODE == "softmax":
        p = tl.where(ok, tl.exp2(s * (scale * 1.4426950408889634) - lse[:, None]), 0.0)
        ds = p * (dp - delta[:, None])
    else:
        p = tl.where(ok, tl.sigmoid(s * scale + bias), 0.0)
        ds = p * (1.0 - p) * dp
    return p, ds


@triton.jit
def _flash_bwd_dkdv(
    Q,
    K,
    V,
    DO,
    LSE,
    DELTA,
    DK,
    DV_,
    sqb,
    sqh,
    sqn,
    sqd,
    skb,
    skh,
    skn,
    skd,
    svb,
    svh,
    svn,
    svd,
    sdb,
    sdh,
    sdn,
    sdd,
    H,
    NQ,
    NK,
    D,
    DV,
    scale,
    bias,
    local_block,
    MODE: tl.constexpr,
    CAUSAL: tl.constexpr,
    LOCAL: tl.constexpr,
    F32: tl.constexpr,
    DOT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    start_n = pid_n * BLOCK_N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    k = _compute(load_tile(K + b * skb + h * skh, offs_n, offs_d, skn, skd, NK, D), F32)
    v = _compute(load_tile(V + b * svb + h * svh, offs_n, offs_dv, svn, svd, NK, DV), F32)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_DV], tl.float32)
    lo, hi = _query_range(start_n, NQ, local_block, BLOCK_M, BLOCK_N, CAUSAL, LOCAL)
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        row = offs_m < NQ
        q = _compute(load_tile(Q + b * sqb + h * sqh, offs_m, offs_d, sqn, sqd, NQ, D), F32)
        do = _compute(load_tile(DO + b * sdb + h * sdh, offs_m, offs_dv, sdn, sdd, NQ, DV), F32)
        lse = tl.load(LSE + pid_bh * NQ + offs_m, mask=row, other=0.0)
        delta = tl.load(DELTA + pid_bh * NQ + offs_m, mask=row, other=0.0)
        p, ds = _weights_and_grad(
            q, k, v, do, lse, delta, offs_m, offs_n, NK, scale, bias, local_block, MODE, CAUSAL, LOCAL, DOT
        )
        p = tl.where(row[:, None], p, 0.0)
        ds = tl.where(row[:, None], ds, 0.0)
        dv += mm(tl.trans(p), do, DOT)  # [N, M] @ [M, Dv]
        dk += mm(tl.trans(ds), q, DOT)  # [N, M] @ [M, D]
    store_tile(DK + b * skb + h * skh, offs_n, offs_d, skn, skd, NK, D, dk * scale)
    store_tile(DV_ + b * svb + h * svh, offs_n, offs_dv, svn, svd, NK, DV, dv)


@triton.jit
def _flash_bwd_dq(
    Q,
    K,
    V,
    DO,
    LSE,
    DELTA,
    DQ,
    sqb,
    sqh,
    sqn,
    sqd,
    skb,
    skh,
    skn,
    skd,
    svb,
    svh,
    svn,
    svd,
    sdb,
    sdh,
    sdn,
    sdd,
    H,
    NQ,
    NK,
    D,
    DV,
    scale,
    bias,
    local_block,
    MODE: tl.constexpr,
    CAUSAL: tl.constexpr,
    LOCAL: tl.constexpr,
    F32: tl.constexpr,
    DOT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    row = offs_m < NQ
    q = _compute(load_tile(Q + b * sqb + h * sqh, offs_m, offs_d, sqn, sqd, NQ, D), F32)
    do = _compute(load_tile(DO + b * sdb + h * sdh, offs_m, offs_dv, sdn, sdd, NQ, DV), F32)
    lse = tl.load(LSE + pid_bh * NQ + offs_m, mask=row, other=0.0)
    delta = tl.load(DELTA + pid_bh * NQ + offs_m, mask=row, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    lo, hi = _key_range(start_m, NK, local_block, BLOCK_M, BLOCK_N, CAUSAL, LOCAL)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = _compute(load_tile(K + b * skb + h * skh, offs_n, offs_d, skn, skd, NK, D), F32)
        v = _compute(load_tile(V + b * svb + h * svh, offs_n, offs_dv, svn, svd, NK, DV), F32)
        p, ds = _weights_and_grad(
            q, k, v, do, lse, delta, offs_m, offs_n, NK, scale, bias, local_block, MODE, CAUSAL, LOCAL, DOT
        )
        dq += mm(ds, k, DOT)  # [M, N] @ [N, D]
    store_tile(DQ + b * sqb + h * sqh, offs_m, offs_d, sqn, sqd, NQ, D, dq * scale)


def _tiles(q: Tensor, v: Tensor) -> tuple[dict, dict, dict]:
    """Launch settings of the forward, dK/dV and dQ kernels on q's GPU. The H100 tiles fit 16-bit inputs on any
    GPU from the A100 on; fp32 tiles take twice the shared memory, so on smaller GPUs they drop a pipeline stage
    or shrink (sizes compiled for sm_80/89/90/100/120 by scripts/kernel_shared_memory.py)."""
    d, dv = block_dim(q.shape[-1]), block_dim(v.shape[-1])
    m, n = (64, 32) if max(d, dv) > 64 else (128, 64)
    fwd = dkdv = dq = (m, n, 3)
    limit = shared_memory_limit(q.device)
    if q.element_size() == 4 and limit < HOPPER_SHARED_MEMORY:
        if limit >= AMPERE_SHARED_MEMORY:
            dkdv = (m, n, 2)
        else:  # RTX 30/40-series: 99 KB
            fwd = (m, n, 2)
            dkdv = dq = (m // 2, n, 2)
    return tuple(
        dict(
            BLOCK_D=d,
            BLOCK_DV=dv,
            BLOCK_M=seq_block(q.shape[-2], bm),
            BLOCK_N=seq_block(v.shape[-2], bn),
            num_stages=st,
            num_warps=8,  # at sm_90, bf16, D = 64 the backward kernels spilled 336-928 bytes with 4 warps, none with 8
        )
        for bm, bn, st in (fwd, dkdv, dq)
    )


class FlashAttention(torch.autograd.Function):
    """mode: one of MODES; local_block > 0 restricts attention to contiguous blocks."""

    @staticmethod
    def forward(ctx, q, k, v, mode: str, causal: bool, scale: float, bias: float, local_block: int):
        B, H, NQ, D = q.shape
        NK, DV = k.shape[-2], v.shape[-1]
        cfg = _tiles(q, v)[0]
        out = new_empty(B, H, NQ, DV, like=q)
        lse = new_empty(B, H, NQ, like=q, dtype=torch.float32)
        grid = (triton.cdiv(NQ, cfg["BLOCK_M"]), B * H)
        _flash_fwd[grid](
            q,
            k,
            v,
            out,
            lse,
            *strides(q),
            *strides(k),
            *strides(v),
            *strides(out),
            H,
            NQ,
            NK,
            D,
            DV,
            scale,
            bias,
            max(local_block, 1),
            MODE=mode,
            CAUSAL=causal,
            LOCAL=local_block > 0,
            F32=fp32_tiles(q),
            DOT=dot_mode(q),
            **cfg,
        )
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.args = (mode, causal, scale, bias, local_block)
        return out

    @staticmethod
    @once_differentiable  # a fused backward: differentiating it again raises, never gives zeros
    def backward(ctx, dout):
        q, k, v, out, lse = (t.contiguous() for t in ctx.saved_tensors)
        mode, causal, scale, bias, local_block = ctx.args
        B, H, NQ, D = q.shape
        NK, DV = k.shape[-2], v.shape[-1]
        _, dkdv_cfg, dq_cfg = _tiles(q, v)
        dout = dout.contiguous()
        delta = new_empty(B, H, NQ, like=q, dtype=torch.float32)
        if mode == "softmax":
            _row_dot[(triton.cdiv(NQ, 64), B * H)](
                out, dout, delta, *strides(out), *strides(dout), H, NQ, DV, BLOCK_M=64, BLOCK_DV=dq_cfg["BLOCK_DV"]
            )
        # Contiguous gradients share the strides of the contiguous q, k, v passed beside them.
        dq, dk, dv = new_empty(*q.shape, like=q), new_empty(*k.shape, like=k), new_empty(*v.shape, like=v)
        common = (H, NQ, NK, D, DV, scale, bias, max(local_block, 1))
        flags = dict(MODE=mode, CAUSAL=causal, LOCAL=local_block > 0, F32=fp32_tiles(q), DOT=dot_mode(q))
        dkdv_strides = (*strides(q), *strides(k), *strides(v), *strides(dout))
        _flash_bwd_dkdv[(triton.cdiv(NK, dkdv_cfg["BLOCK_N"]), B * H)](
            q, k, v, dout, lse, delta, dk, dv, *dkdv_strides, *common, **flags, **dkdv_cfg
        )
        _flash_bwd_dq[(triton.cdiv(NQ, dq_cfg["BLOCK_M"]), B * H)](
            q, k, v, dout, lse, delta, dq, *dkdv_strides, *common, **flags, **dq_cfg
        )
        return dq, dk, dv, None, None, None, None, None


__all__ = ["LOG2E", "MODES", "FlashAttention"]
