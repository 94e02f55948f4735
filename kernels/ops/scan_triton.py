"""Decayed linear-attention scans in Triton (Lightning Attention-2's intra-block / inter-block tiling),
for `lightning` (both forms) and causal `norm`.

One kernel computes OUT_t = Σ_{s ≤ t} λ^{t−s} (a_t·b_s) c_s along the sequence in either direction:
inside a block the weights are a masked C×C tile, across blocks a D×Dc state is carried in fp32.
The backward of such a scan is three more scans with the operands' roles swapped, so the same kernel
serves both passes; the non-causal (two-sided) form adds a strict scan in the opposite direction.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .triton_utils import AMPERE_SHARED_MEMORY, block_dim, fp32_tiles, new_empty, shared_memory_limit, strides


@triton.jit
def _sweep(
    A,
    B_,
    C_,
    OUT,
    a_off,
    b_off,
    c_off,
    o_off,
    san,
    sad,
    sbn,
    sbd,
    scn,
    scd,
    son,
    sod,
    NA,
    NB,
    N,
    DA,
    DC,
    dc_start,
    rate,
    REVERSE: tl.constexpr,
    STRICT: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    F32: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_DA: tl.constexpr,
    BLOCK_DC: tl.constexpr,
):
    idx = tl.arange(0, BLOCK)
    offs_da = tl.arange(0, BLOCK_DA)
    offs_dc = dc_start + tl.arange(0, BLOCK_DC)
    fidx = idx.to(tl.float32)
    a_decay = tl.exp(-rate * fidx)  # from the block start to t
    b_decay = tl.exp(-rate * (BLOCK - fidx))  # from s to the next block start
    rel = fidx[:, None] - fidx[None, :]
    if STRICT:
        inside = rel > 0
    else:
        inside = rel >= 0
    diag = tl.where(inside, tl.exp(-rate * tl.maximum(rel, 0.0)), 0.0)
    block_decay = tl.exp(-rate * BLOCK)
    state = tl.zeros([BLOCK_DA, BLOCK_DC], tl.float32)
    for start in range(0, N, BLOCK):
        step = start + idx  # position in scan order
        if REVERSE:
            pos = N - 1 - step
        else:
            pos = step
        in_a = (step < N) & (pos < NA)
        in_b = (step < N) & (pos < NB)
        a = tl.load(
            A + a_off + pos[:, None] * san + offs_da[None, :] * sad,
            mask=in_a[:, None] & (offs_da[None, :] < DA),
            other=0.0,
        )
        b = tl.load(
            B_ + b_off + pos[:, None] * sbn + offs_da[None, :] * sbd,
            mask=in_b[:, None] & (offs_da[None, :] < DA),
            other=0.0,
        )
        c = tl.load(
            C_ + c_off + pos[:, None] * scn + offs_dc[None, :] * scd,
            mask=in_b[:, None] & (offs_dc[None, :] < DC),
            other=0.0,
        )
        if F32:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
            c = c.to(tl.float32)
        w = tl.dot(a, tl.trans(b), input_precision="ieee") * diag
        out = tl.dot(w.to(c.dtype), c, input_precision="ieee")
        out += tl.dot(a.to(tl.float32) * a_decay[:, None], state, input_precision="ieee")
        o_ptr = OUT + o_off + pos[:, None] * son + offs_dc[None, :] * sod
        o_mask = in_a[:, None] & (offs_dc[None, :] < DC)
        if ACCUMULATE:
            out += tl.load(o_ptr, mask=o_mask, other=0.0).to(tl.float32)
        tl.store(o_ptr, out.to(OUT.dtype.element_ty), mask=o_mask)
        kv = tl.dot(tl.trans(b.to(tl.float32) * b_decay[:, None]), c.to(tl.float32), input_precision="ieee")
        state = state * block_decay + kv


@triton.jit
def _decay_scan(
    A,
    B_,
    C_,
    OUT,
    SLOPES,
    sab,
    sah,
    san,
    sad,
    sbb,
    sbh,
    sbn,
    sbd,
    scb,
    sch,
    scn,
    scd,
    sob,
    soh,
    son,
    sod,
    H,
    NA,
    NB,
    N,
    DA,
    DC,
    REVERSE: tl.constexpr,
    SECOND_REVERSE: tl.constexpr,  # not REVERSE, computed on the host
    TWO_SIDED: tl.constexpr,
    F32: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_DA: tl.constexpr,
    BLOCK_DC: tl.constexpr,
):
    pid_bh = tl.program_id(0)
    dc_start = tl.program_id(1) * BLOCK_DC
    b = pid_bh // H
    h = pid_bh % H
    rate = tl.load(SLOPES + h).to(tl.float32)
    a_off = b * sab + h * sah
    b_off = b * sbb + h * sbh
    c_off = b * scb + h * sch
    o_off = b * sob + h * soh
    _sweep(
        A,
        B_,
        C_,
        OUT,
        a_off,
        b_off,
        c_off,
        o_off,
        san,
        sad,
        sbn,
        sbd,
        scn,
        scd,
        son,
        sod,
        NA,
        NB,
        N,
        DA,
        DC,
        dc_start,
        rate,
        REVERSE,
        False,
        False,
        F32,
        BLOCK,
        BLOCK_DA,
        BLOCK_DC,
    )
    if TWO_SIDED:
        # The second sweep adds into rows of OUT that the first sweep stored. Threads of one program may hold
        # an element in different layouts for the store and the read-back, and Triton orders global memory
        # only with an explicit barrier (triton-lang/triton#1615, #10924).
        tl.debug_barrier()
        _sweep(
            A,
            B_,
            C_,
            OUT,
            a_off,
            b_off,
            c_off,
            o_off,
            san,
            sad,
            sbn,
            sbd,
            scn,
            scd,
            son,
            sod,
            NA,
            NB,
            N,
            DA,
            DC,
            dc_start,
            rate,
            SECOND_REVERSE,
            True,
            True,
            F32,
            BLOCK,
            BLOCK_DA,
            BLOCK_DC,
        )


def decay_scan(a: Tensor, b: Tensor, c: Tensor, slopes: Tensor, *, reverse: bool, two_sided: bool) -> Tensor:
    """OUT_t = Σ_s w(t, s) (a_t·b_s) c_s with w = λ_h^{|t−s|} over s ≤ t in scan order (s < t added the
    other way when two_sided). a [B,H,NA,Da], b [B,H,NB,Da], c [B,H,NB,Dc] -> [B,H,NA,Dc]; positions
    of a and b both start at 0."""
    B, H, NA, DA = a.shape
    NB, DC = b.shape[-2], c.shape[-1]
    out = new_empty(B, H, NA, DC, like=a)
    block_da, block_dc = block_dim(DA), min(block_dim(DC), 64)
    block = 64 if block_da <= 64 else 32
    # fp32 tiles with 3 pipeline stages need 112 KB: over the 99 KB of an RTX 3090/4090
    small = a.element_size() == 4 and shared_memory_limit(a.device) < AMPERE_SHARED_MEMORY
    grid = (B * H, triton.cdiv(DC, block_dc))
    _decay_scan[grid](
        a,
        b,
        c,
        out,
        slopes,
        *strides(a),
        *strides(b),
        *strides(c),
        *strides(out),
        H,
        NA,
        NB,
        max(NA, NB),
        DA,
        DC,
        REVERSE=reverse,
        SECOND_REVERSE=not reverse,
        TWO_SIDED=two_sided,
        F32=fp32_tiles(a),
        BLOCK=block,
        BLOCK_DA=block_da,
        BLOCK_DC=block_dc,
        num_stages=2 if small else 3,
    )
    return out


class DecayedLinearAttention(torch.autograd.Function):
    """O_t = Σ_s λ_h^{|t−s|}(q_t·k_s)v_s over s ≤ t (causal) or all s (two-sided), fused forward and backward."""

    @staticmethod
    def forward(ctx, q, k, v, slopes, causal: bool):
        slopes = slopes.to(device=q.device, dtype=torch.float32).contiguous()
        ctx.save_for_backward(q, k, v, slopes)
        ctx.causal = causal
        return decay_scan(q, k, v, slopes, reverse=False, two_sided=not causal)

    @staticmethod
    def backward(ctx, dout):
        q, k, v, slopes = ctx.saved_tensors
        two_sided = not ctx.causal
        # dq_t = Σ_{s≤t} w (dO_t·v_s) k_s;  dk_s = Σ_{t≥s} w (v_s·dO_t) q_t;  dv_s = Σ_{t≥s} w (k_s·q_t) dO_t
        dq = decay_scan(dout, v, k, slopes, reverse=False, two_sided=two_sided)
        dk = decay_scan(v, dout, q, slopes, reverse=True, two_sided=two_sided)
        dv = decay_scan(k, q, dout, slopes, reverse=True, two_sided=two_sided)
        return dq, dk, dv, None, None


def lightning_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool, slopes: Tensor | None, chunk_size: int
) -> Tensor:
    """chunk_size is the reference path's memory knob; the kernel tiles by its own block size."""
    if slopes is None:
        from .lightning.reference import alibi_slopes

        slopes = torch.tensor(alibi_slopes(q.shape[1]), dtype=torch.float32)
    return DecayedLinearAttention.apply(q, k, v, slopes, causal)


__all__ = ["DecayedLinearAttention", "decay_scan", "lightning_attention"]
