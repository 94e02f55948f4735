"""Chunked decayed linear attention in Triton (Lightning Attention-2's intra/inter-chunk split, laid out as
flash-linear-attention's chunk kernels): the engine of `lightning` (both forms) and causal `norm`.

    OUT_t = Σ_s w(t, s) (a_t·b_s) c_s,   w(t, s) = λ^|t−s| on s ≤ t ("causal"), s ≥ t ("anticausal") or all s
                                          ("two_sided"), λ = exp(−rate) per head.

The sequence is cut into chunks of C positions. A serial pass per (batch, head) carries the D×Dc state across
chunks and stores the state at every chunk boundary (one product per chunk); the output pass then treats every
chunk independently: the masked C×C product inside the chunk plus the queries times the stored states. Only the
state pass is sequential, and it does one matrix product per chunk.

With p the chunk of t and t' = t − pC its place in the chunk, the states are
    forward   F_p = Σ_{s < pC} λ^{pC−s} b_sᵀc_s          contributes λ^{t'} a_t F_p
    backward  G_p = Σ_{s ≥ (p+1)C} λ^{s−(p+1)C} b_sᵀc_s   contributes λ^{C−t'} a_t G_p
so every exponent is ≤ 0 and nothing overflows. The gradient of such a sum is three sums of the same form with
the operands' roles swapped and the direction flipped; their states are transposes of each other, so the
backward pass runs one state pass per direction and three output passes.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import once_differentiable

from .triton_utils import (
    AMPERE_SHARED_MEMORY,
    block_dim,
    dot_mode,
    load_tile,
    mm,
    new_empty,
    shared_memory_limit,
    state_dtype,
    store_tile,
    strides,
)

MODES = ("causal", "anticausal", "two_sided")
FLIPPED = {"causal": "anticausal", "anticausal": "causal", "two_sided": "two_sided"}


@triton.jit
def _chunk_states(
    B_,
    C_,
    SLOPES,
    S,
    sbb,
    sbh,
    sbn,
    sbd,
    scb,
    sch,
    scn,
    scd,
    ssb,
    ssh,
    ssp,
    ssa,
    ssc,
    H,
    NB,
    NT,
    DA,
    DC,
    REVERSE: tl.constexpr,
    DOT: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_DA: tl.constexpr,
    BLOCK_DC: tl.constexpr,
):
    pid_bh = tl.program_id(0)
    pid_c = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    rate = tl.load(SLOPES + h).to(tl.float32)
    idx = tl.arange(0, CHUNK)
    offs_a = tl.arange(0, BLOCK_DA)
    offs_c = pid_c * BLOCK_DC + tl.arange(0, BLOCK_DC)
    if REVERSE:
        weight = tl.exp(-rate * idx.to(tl.float32))  # λ^{s'}: from s back to the chunk's start
    else:
        weight = tl.exp(-rate * (CHUNK - idx).to(tl.float32))  # λ^{C−s'}: from s to the next chunk's start
    chunk_decay = tl.exp(-rate * CHUNK)
    s_ptr = S + b * ssb + h * ssh + offs_a[:, None] * ssa + offs_c[None, :] * ssc
    s_mask = (offs_a[:, None] < DA) & (offs_c[None, :] < DC)
    state = tl.zeros([BLOCK_DA, BLOCK_DC], tl.float32)
    for i in range(NT):
        if REVERSE:
            p = NT - 1 - i
        else:
            p = i
        tl.store(s_ptr + p * ssp, state.to(S.dtype.element_ty), mask=s_mask)
        pos = p * CHUNK + idx
        bt = load_tile(B_ + b * sbb + h * sbh, pos, offs_a, sbn, sbd, NB, DA)
        ct = load_tile(C_ + b * scb + h * sch, pos, offs_c, scn, scd, NB, DC)
        # [DA, C] @ [C, DC]
        state = state * chunk_decay + mm(tl.trans(bt.to(tl.float32) * weight[:, None]), ct, DOT)


@triton.jit
def _chunk_output(
    A,
    B_,
    C_,
    SF,
    SG,
    SLOPES,
    OUT,
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
    sfb,
    sfh,
    sfp,
    sfa,
    sfc,
    sgb,
    sgh,
    sgp,
    sga,
    sgc,
    sob,
    soh,
    son,
    sod,
    H,
    NA,
    NB,
    DA,
    DC,
    MODE: tl.constexpr,
    DOT: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_DA: tl.constexpr,
    BLOCK_DC: tl.constexpr,
):
    p = tl.program_id(0)
    pid_bh = tl.program_id(1)
    pid_c = tl.program_id(2)
    b = pid_bh // H
    h = pid_bh % H
    rate = tl.load(SLOPES + h).to(tl.float32)
    idx = tl.arange(0, CHUNK)
    pos = p * CHUNK + idx
    offs_a = tl.arange(0, BLOCK_DA)
    offs_c = pid_c * BLOCK_DC + tl.arange(0, BLOCK_DC)
    at = load_tile(A + b * sab + h * sah, pos, offs_a, san, sad, NA, DA)
    bt = load_tile(B_ + b * sbb + h * sbh, pos, offs_a, sbn, sbd, NB, DA)
    ct = load_tile(C_ + b * scb + h * sch, pos, offs_c, scn, scd, NB, DC)
    fidx = idx.to(tl.float32)
    rel = fidx[:, None] - fidx[None, :]  # t' − s'
    if MODE == "causal":
        inside = rel >= 0
    elif MODE == "anticausal":
        inside = rel <= 0
    else:
        inside = rel == rel
    w = tl.where(inside, tl.exp(-rate * tl.abs(rel)), 0.0)
    scores = mm(at, tl.trans(bt), DOT) * w  # [C, DA] @ [DA, C]
    out = mm(scores, ct, DOT)  # [C, C] @ [C, DC]
    if MODE != "anticausal":
        f = load_tile(SF + b * sfb + h * sfh + p * sfp, offs_a, offs_c, sfa, sfc, DA, DC)
        out += mm(at.to(tl.float32) * tl.exp(-rate * fidx)[:, None], f, DOT)  # [C, DA] @ [DA, DC]
    if MODE != "causal":
        g = load_tile(SG + b * sgb + h * sgh + p * sgp, offs_a, offs_c, sga, sgc, DA, DC)
        out += mm(at.to(tl.float32) * tl.exp(-rate * (CHUNK - fidx))[:, None], g, DOT)  # [C, DA] @ [DA, DC]
    store_tile(OUT + b * sob + h * soh, pos, offs_c, son, sod, NA, DC, out)


def _tiling(da: int, dc: int, t: Tensor) -> tuple[int, int, int, int]:
    """Chunk length, padded DA, DC tile and pipeline stages of the state pass for this GPU. The chunk length
    depends on the pair of head dims only, so the passes of a backward (roles swapped) agree with the forward's."""
    block_da, block_dc = block_dim(da), min(block_dim(dc), 64)
    chunk = 64 if max(da, dc) <= 64 else 32
    # fp32 tiles with 3 stages are over the 99 KB an RTX 3090/4090 gives a block
    small = t.element_size() == 4 and shared_memory_limit(t.device) < AMPERE_SHARED_MEMORY
    return chunk, block_da, block_dc, 2 if small else 3


def chunk_states(b: Tensor, c: Tensor, slopes: Tensor, n: int, *, reverse: bool) -> Tensor:
    """The state at every chunk boundary, [B, H, NT, Da, Dc] (F_p forward, G_p reverse; module docstring) of
    Σ_s λ^(..) b_sᵀc_s over n positions (b, c shorter than n are zero beyond their end)."""
    B, H, NB, DA = b.shape
    DC = c.shape[-1]
    chunk, block_da, block_dc, stages = _tiling(DA, DC, b)
    nt = triton.cdiv(n, chunk)
    states = new_empty(B, H, nt, DA, DC, like=b, dtype=state_dtype(b))
    _chunk_states[(B * H, triton.cdiv(DC, block_dc))](
        b,
        c,
        slopes,
        states,
        *strides(b),
        *strides(c),
        *states.stride(),
        H,
        NB,
        nt,
        DA,
        DC,
        REVERSE=reverse,
        DOT=dot_mode(b, bounded=False),
        CHUNK=chunk,
        BLOCK_DA=block_da,
        BLOCK_DC=block_dc,
        num_stages=stages,
    )
    return states


def chunk_output(
    a: Tensor,
    b: Tensor,
    c: Tensor,
    slopes: Tensor,
    forward: Tensor | None,
    backward: Tensor | None,
    mode: str,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """OUT_t = Σ_s w(t, s)(a_t·b_s)c_s for `mode` in MODES, given the chunk states of (b, c) in the directions it
    needs (forward for causal and two_sided, backward for anticausal and two_sided; transposed views work).
    a [B,H,NA,Da], b [B,H,NB,Da], c [B,H,NB,Dc] -> [B,H,NA,Dc] in `dtype` (default a's); positions of a and b
    both start at 0."""
    B, H, NA, DA = a.shape
    NB, DC = b.shape[-2], c.shape[-1]
    chunk, block_da, block_dc, _ = _tiling(DA, DC, a)
    out = new_empty(B, H, NA, DC, like=a, dtype=dtype)
    forward = backward if forward is None else forward
    backward = forward if backward is None else backward
    grid = (triton.cdiv(max(NA, NB), chunk), B * H, triton.cdiv(DC, block_dc))
    _chunk_output[grid](
        a,
        b,
        c,
        forward,
        backward,
        slopes,
        out,
        *strides(a),
        *strides(b),
        *strides(c),
        *forward.stride(),
        *backward.stride(),
        *strides(out),
        H,
        NA,
        NB,
        DA,
        DC,
        MODE=mode,
        DOT=dot_mode(a, bounded=False),
        CHUNK=chunk,
        BLOCK_DA=block_da,
        BLOCK_DC=block_dc,
        num_warps=8,  # with 4, the two-sided fp32 output spilled 64,928 bytes; with 8, 2,848
    )
    return out


def _t(states: Tensor | None) -> Tensor | None:
    return None if states is None else states.transpose(-1, -2)


def decayed_attention(
    a: Tensor, b: Tensor, c: Tensor, slopes: Tensor, mode: str, dtype: torch.dtype | None = None
) -> tuple[Tensor, tuple]:
    """The forward sum (in `dtype`, default a's) and the states its backward reuses."""
    n = max(a.shape[-2], b.shape[-2])
    forward = chunk_states(b, c, slopes, n, reverse=False) if mode != "anticausal" else None
    backward = chunk_states(b, c, slopes, n, reverse=True) if mode != "causal" else None
    return chunk_output(a, b, c, slopes, forward, backward, mode, dtype), (forward, backward)


class DecayedLinearAttention(torch.autograd.Function):
    """O_t = Σ_s λ_h^{|t−s|}(q_t·k_s)v_s over s ≤ t (causal) or all s (two-sided), fused forward and backward.
    float_out: return O in fp32 whatever q's dtype (an unnormalised sum that a later step normalises)."""

    @staticmethod
    def forward(ctx, q, k, v, slopes, causal: bool, float_out: bool = False):
        slopes = slopes.to(device=q.device, dtype=torch.float32).contiguous()
        mode = "causal" if causal else "two_sided"
        out, (forward, backward) = decayed_attention(q, k, v, slopes, mode, torch.float32 if float_out else None)
        ctx.save_for_backward(q, k, v, slopes, *(s for s in (forward, backward) if s is not None))
        ctx.mode = mode
        return out

    @staticmethod
    @once_differentiable  # a fused backward: differentiating it again raises, never gives zeros
    def backward(ctx, dout):
        q, k, v, slopes, *states = ctx.saved_tensors
        mode = ctx.mode
        forward = states[0] if mode != "anticausal" else None
        backward = states[-1] if mode != "causal" else None
        dout = dout.contiguous()
        # dq_t = Σ_s w(t,s) (dO_t·v_s) k_s: the forward's states of (k, v), transposed
        dq = chunk_output(dout, v, k, slopes, _t(forward), _t(backward), mode)
        # dk_s = Σ_t w(t,s) (v_s·dO_t) q_t and dv_s = Σ_t w(t,s) (k_s·q_t) dO_t run the other way; both use the
        # states of (q, dO), one of them transposed
        flipped = FLIPPED[mode]
        n = max(q.shape[-2], k.shape[-2])
        r_forward = chunk_states(q, dout, slopes, n, reverse=False) if flipped != "anticausal" else None
        r_backward = chunk_states(q, dout, slopes, n, reverse=True) if flipped != "causal" else None
        dv = chunk_output(k, q, dout, slopes, r_forward, r_backward, flipped)
        dk = chunk_output(v, dout, q, slopes, _t(r_forward), _t(r_backward), flipped)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None


__all__ = ["MODES", "DecayedLinearAttention", "chunk_output", "chunk_states", "decayed_attention"]
