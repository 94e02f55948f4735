"""The two-pass linear engine: Triton kernels for non-causal linear attention, `nala`, `mala` and non-causal `norm`.

Pass 1 streams the keys once and reduces, in fp32, the D×Dv state Σ ψ(k_j)v_jᵀ and the normaliser
Σ φ(k_j) (φ: the kind's feature map, ψ: φ rotated by RoPE when given); pass 2 applies them to each
query tile. Feature maps and RoPE are computed in registers, so φ(q), φ(k) never reach memory. Tiles are
loaded in fp32: these kernels are bandwidth-bound, so all their arithmetic is fp32.
Backward mirrors this: a query pass computes dq and reduces dState, dNormaliser; a key pass gives dk, dv.
Reductions are split over SPLITS programs per head whose fp32 partials are summed afterwards.

RoPE pairs features (2i, 2i+1); a tile of rotated features needs each feature's partner, which the
kernels get by loading the partner column (index ^ 1) instead of permuting registers.
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
    block_dim,
    dot_mode,
    load_tile,
    mm,
    new_empty,
    reduction_splits,
    seq_block,
    shared_memory_limit,
    store_tile,
    strides,
    wide_dot_mode,
)

MODES = ("nala", "mala", "norm")  # which query/key feature maps and output formula
FEATURES = ("elu1", "relu")  # the feature map φ of mala and norm
EPS = 1e-6


@triton.jit
def _phi(x, FEATURE: tl.constexpr):
    if FEATURE == "elu1":
        return tl.where(x > 0, x + 1.0, tl.exp(tl.minimum(x, 0.0)))
    else:
        return tl.maximum(x, 0.0)


@triton.jit
def _phi_grad(x, FEATURE: tl.constexpr):
    if FEATURE == "elu1":
        return tl.where(x > 0, 1.0, tl.exp(tl.minimum(x, 0.0)))
    else:
        return tl.where(x > 0, 1.0, 0.0)


@triton.jit
def _rope(x, x_partner, sin, cos, sign):
    """(R x)[d] = x[d]cos[d] + sign[d]·x[d^1]·sin[d], sign = −1 on even d."""
    return x * cos + sign * x_partner * sin


@triton.jit
def _rope_t(g, g_partner, sin_partner, cos, sign):
    """(Rᵀ g)[e] = g[e]cos[e] − sign[e]·g[e^1]·sin[e^1]."""
    return g * cos - sign * g_partner * sin_partner


@triton.jit
def _nala_query(q):
    """φq halves (relu(±q)/n)^p and the row scalars n = max(‖q‖, 1e-6), p = 3(0.5 + tanh n)."""
    n = tl.maximum(tl.sqrt(tl.sum(q * q, 1)), 1e-6)
    t = 1.0 - 2.0 / (tl.exp(2.0 * n) + 1.0)  # tanh
    p = 3.0 * (0.5 + t)
    return n, p, t


@triton.jit
def _pow(u, p):
    """u ** p for u >= 0 (0 where u == 0), p a row vector."""
    return tl.where(u > 0, tl.exp(p[:, None] * tl.log(tl.maximum(u, 1e-30))), 0.0)


@triton.jit
def _state_fwd(
    K,
    V,
    SIN,
    COS,
    S_PART,
    Z_PART,
    VS_PART,
    skb,
    skh,
    skn,
    skd,
    svb,
    svh,
    svn,
    svd,
    srb,
    srh,
    srn,
    srd,
    scb,
    sch,
    scn,
    scd,
    H,
    NK,
    D,
    DV,
    inv_nk,
    SPLITS,
    ROW,  # elements between the (head, split) rows of S_PART, Z_PART, VS_PART (views of one buffer)
    DOT: tl.constexpr,
    MODE: tl.constexpr,
    FEATURE: tl.constexpr,
    ROPE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    pid_bh = tl.program_id(0)
    split = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    partner = offs_d ^ 1
    sign = tl.where(offs_d % 2 == 0, -1.0, 1.0)
    s_a = tl.zeros([BLOCK_D, BLOCK_DV], tl.float32)
    s_b = tl.zeros([BLOCK_D, BLOCK_DV], tl.float32)
    z_a = tl.zeros([BLOCK_D], tl.float32)
    z_b = tl.zeros([BLOCK_D], tl.float32)
    v_sum = tl.zeros([BLOCK_DV], tl.float32)
    for start in range(split * BLOCK_N, NK, SPLITS * BLOCK_N):
        rows = start + tl.arange(0, BLOCK_N)
        valid = (rows[:, None] < NK) & (offs_d[None, :] < D)
        k = load_tile(K + (b * skb + h * skh), rows, offs_d, skn, skd, NK, D).to(tl.float32)
        v = load_tile(V + (b * svb + h * svh), rows, offs_dv, svn, svd, NK, DV).to(tl.float32)
        if ROPE:
            kp = load_tile(K + (b * skb + h * skh), rows, partner, skn, skd, NK, D).to(tl.float32)
            sin = load_tile(SIN + (b * srb + h * srh), rows, offs_d, srn, srd, NK, D).to(tl.float32)
            cos = load_tile(COS + (b * scb + h * sch), rows, offs_d, scn, scd, NK, D).to(tl.float32)
        if MODE == "nala":
            k3 = k * k * k
            f_a = tl.maximum(k3, 0.0)
            f_b = tl.maximum(-k3, 0.0)
            psi_a = f_a
            psi_b = f_b
            if ROPE:
                kp3 = kp * kp * kp
                psi_a = _rope(f_a, tl.maximum(kp3, 0.0), sin, cos, sign)
                psi_b = _rope(f_b, tl.maximum(-kp3, 0.0), sin, cos, sign)
            s_b += mm(tl.trans(psi_b), v, DOT)  # [D, N] @ [N, Dv]
            z_b += tl.sum(f_b, 0)
        else:
            f_a = tl.where(valid, _phi(k, FEATURE), 0.0)
            psi_a = f_a
            if ROPE:
                psi_a = _rope(f_a, tl.where(valid, _phi(kp, FEATURE), 0.0), sin, cos, sign)
            v_sum += tl.sum(v, 0)
        s_a += mm(tl.trans(psi_a), v, DOT)  # [D, N] @ [N, Dv]
        z_a += tl.sum(f_a, 0)
    base = pid_bh * SPLITS + split
    state = S_PART + base * ROW + offs_d[:, None] * BLOCK_DV + offs_dv[None, :]
    tl.store(state, s_a * inv_nk)
    tl.store(state + BLOCK_D * BLOCK_DV, s_b * inv_nk)
    tl.store(Z_PART + base * ROW + offs_d, z_a * inv_nk)
    tl.store(Z_PART + base * ROW + BLOCK_D + offs_d, z_b * inv_nk)
    tl.store(VS_PART + base * ROW + offs_dv, v_sum * inv_nk)


@triton.jit
def _query_terms(
    Q,
    SIN,
    COS,
    S,
    Z,
    VS,
    q_off,
    rope_off_s,
    rope_off_c,
    rows,
    offs_d,
    offs_dv,
    st,  # offset of this head's row in S, Z, VS
    sqn,
    sqd,
    srn,
    srd,
    scn,
    scd,
    NQ,
    D,
    DV,
    scale,
    MODE: tl.constexpr,
    FEATURE: tl.constexpr,
    ROPE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    """Everything pass 2 and its backward need about one query tile (recomputed, never stored)."""
    partner = offs_d ^ 1
    sign = tl.where(offs_d % 2 == 0, -1.0, 1.0)
    valid = (rows[:, None] < NQ) & (offs_d[None, :] < D)
    q = load_tile(Q + q_off, rows, offs_d, sqn, sqd, NQ, D).to(tl.float32)
    s_ptr = S + st + offs_d[:, None] * BLOCK_DV + offs_dv[None, :]
    s_a = tl.load(s_ptr)
    s_b = tl.load(s_ptr + BLOCK_D * BLOCK_DV)
    z_a = tl.load(Z + st + offs_d)
    z_b = tl.load(Z + st + BLOCK_D + offs_d)
    v_mean = tl.load(VS + st + offs_dv)
    sin = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    cos = sin
    qp = sin
    if ROPE:
        qp = load_tile(Q + q_off, rows, partner, sqn, sqd, NQ, D).to(tl.float32)
        sin = load_tile(SIN + rope_off_s, rows, offs_d, srn, srd, NQ, D).to(tl.float32)
        cos = load_tile(COS + rope_off_c, rows, offs_d, scn, scd, NQ, D).to(tl.float32)
    return q, qp, sin, cos, sign, valid, s_a, s_b, z_a, z_b, v_mean


@triton.jit
def _apply_fwd(
    Q,
    SIN,
    COS,
    S,
    Z,
    VS,
    O,
    sqb,
    sqh,
    sqn,
    sqd,
    srb,
    srh,
    srn,
    srd,
    scb,
    sch,
    scn,
    scd,
    sob,
    soh,
    son,
    sod,
    H,
    NQ,
    D,
    DV,
    scale,
    ROW,
    DOT: tl.constexpr,
    MODE: tl.constexpr,
    FEATURE: tl.constexpr,
    ROPE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    q, qp, sin, cos, sign, valid, s_a, s_b, z_a, z_b, v_mean = _query_terms(
        Q,
        SIN,
        COS,
        S,
        Z,
        VS,
        b * sqb + h * sqh,
        b * srb + h * srh,
        b * scb + h * sch,
        rows,
        offs_d,
        offs_dv,
        pid_bh * ROW,
        sqn,
        sqd,
        srn,
        srd,
        scn,
        scd,
        NQ,
        D,
        DV,
        scale,
        MODE,
        FEATURE,
        ROPE,
        BLOCK_M,
        BLOCK_D,
        BLOCK_DV,
    )
    if MODE == "nala":
        n, p, t = _nala_query(q)
        f_a = _pow(tl.maximum(q, 0.0) / n[:, None], p)
        f_b = _pow(tl.maximum(-q, 0.0) / n[:, None], p)
        den = tl.sum(f_a * z_a[None, :], 1) + tl.sum(f_b * z_b[None, :], 1) + 1e-6
        r_a = f_a
        r_b = f_b
        if ROPE:
            r_a = _rope(f_a, _pow(tl.maximum(qp, 0.0) / n[:, None], p), sin, cos, sign)
            r_b = _rope(f_b, _pow(tl.maximum(-qp, 0.0) / n[:, None], p), sin, cos, sign)
        num = mm(r_a, s_a, DOT) + mm(r_b, s_b, DOT)  # [M, D] @ [D, Dv], twice
        out = num / den[:, None]
    else:
        f = tl.where(valid, _phi(q, FEATURE), 0.0)
        r = f
        if ROPE:
            r = _rope(f, tl.where(valid, _phi(qp, FEATURE), 0.0), sin, cos, sign)
        num = mm(r, s_a, DOT)  # [M, D] @ [D, Dv]
        if MODE == "mala":
            z = scale * tl.sum(f * z_a[None, :], 1)
            out = (1.0 + 1.0 / (z + 1e-6))[:, None] * (scale * num) - z[:, None] * v_mean[None, :]
        else:
            rms = tl.sqrt(tl.sum(num * num, 1) / DV)
            out = num / (rms + 1e-6)[:, None]
    store_tile(O + b * sob + h * soh, rows, offs_dv, son, sod, NQ, DV, out)


@triton.jit
def _apply_bwd(
    Q,
    SIN,
    COS,
    S,
    Z,
    VS,
    DO,
    DQ,
    DS_PART,
    DZ_PART,
    DVS_PART,
    sqb,
    sqh,
    sqn,
    sqd,
    srb,
    srh,
    srn,
    srd,
    scb,
    sch,
    scn,
    scd,
    sdb,
    sdh,
    sdn,
    sdd,
    H,
    NQ,
    D,
    DV,
    scale,
    SPLITS,
    ROW,
    DOT: tl.constexpr,
    WIDE: tl.constexpr,  # for mala's dState, whose dv cancels against its mean term
    MODE: tl.constexpr,
    FEATURE: tl.constexpr,
    ROPE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    pid_bh = tl.program_id(0)
    split = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    partner = offs_d ^ 1
    ds_a = tl.zeros([BLOCK_D, BLOCK_DV], tl.float32)
    ds_b = tl.zeros([BLOCK_D, BLOCK_DV], tl.float32)
    dz_a = tl.zeros([BLOCK_D], tl.float32)
    dz_b = tl.zeros([BLOCK_D], tl.float32)
    dv_mean = tl.zeros([BLOCK_DV], tl.float32)
    sp_ptr = S + pid_bh * ROW + partner[:, None] * BLOCK_DV + offs_dv[None, :]
    for start in range(split * BLOCK_M, NQ, SPLITS * BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)
        q, qp, sin, cos, sign, valid, s_a, s_b, z_a, z_b, v_mean = _query_terms(
            Q,
            SIN,
            COS,
            S,
            Z,
            VS,
            b * sqb + h * sqh,
            b * srb + h * srh,
            b * scb + h * sch,
            rows,
            offs_d,
            offs_dv,
            pid_bh * ROW,
            sqn,
            sqd,
            srn,
            srd,
            scn,
            scd,
            NQ,
            D,
            DV,
            scale,
            MODE,
            FEATURE,
            ROPE,
            BLOCK_M,
            BLOCK_D,
            BLOCK_DV,
        )
        g = load_tile(DO + (b * sdb + h * sdh), rows, offs_dv, sdn, sdd, NQ, DV).to(tl.float32)
        sin_p = sin
        if ROPE:
            sin_p = load_tile(SIN + (b * srb + h * srh), rows, partner, srn, srd, NQ, D).to(tl.float32)
        if MODE == "nala":
            n, p, t = _nala_query(q)
            u_a = tl.maximum(q, 0.0) / n[:, None]
            u_b = tl.maximum(-q, 0.0) / n[:, None]
            f_a = _pow(u_a, p)
            f_b = _pow(u_b, p)
            den = tl.sum(f_a * z_a[None, :], 1) + tl.sum(f_b * z_b[None, :], 1) + 1e-6
            r_a = f_a
            r_b = f_b
            if ROPE:
                r_a = _rope(f_a, _pow(tl.maximum(qp, 0.0) / n[:, None], p), sin, cos, sign)
                r_b = _rope(f_b, _pow(tl.maximum(-qp, 0.0) / n[:, None], p), sin, cos, sign)
            num = mm(r_a, s_a, DOT) + mm(r_b, s_b, DOT)  # [M, D] @ [D, Dv], twice
            d_num = g / den[:, None]
            d_den = -tl.sum(g * num, 1) / (den * den)
            ds_a += mm(tl.trans(r_a), d_num, DOT)  # [D, M] @ [M, Dv]
            ds_b += mm(tl.trans(r_b), d_num, DOT)  # [D, M] @ [M, Dv]
            dz_a += tl.sum(d_den[:, None] * f_a, 0)
            dz_b += tl.sum(d_den[:, None] * f_b, 0)
            dr_a = mm(d_num, tl.trans(s_a), DOT)  # [M, Dv] @ [Dv, D]
            dr_b = mm(d_num, tl.trans(s_b), DOT)  # [M, Dv] @ [Dv, D]
            if ROPE:
                dr_a = _rope_t(dr_a, mm(d_num, tl.trans(tl.load(sp_ptr)), DOT), sin_p, cos, sign)  # [M, Dv] @ [Dv, D]
                dr_b = _rope_t(
                    dr_b,
                    mm(d_num, tl.trans(tl.load(sp_ptr + BLOCK_D * BLOCK_DV)), DOT),  # [M, Dv] @ [Dv, D]
                    sin_p,
                    cos,
                    sign,
                )
            df_a = dr_a + d_den[:, None] * z_a[None, :]
            df_b = dr_b + d_den[:, None] * z_b[None, :]
            # f = u^p, u = relu(±q)/n, n = ‖q‖, p = 3(0.5 + tanh n)
            du_a = tl.where(u_a > 0, df_a * p[:, None] * f_a / tl.maximum(u_a, 1e-30), 0.0)
            du_b = tl.where(u_b > 0, df_b * p[:, None] * f_b / tl.maximum(u_b, 1e-30), 0.0)
            d_p = tl.sum(tl.where(u_a > 0, df_a * f_a * tl.log(tl.maximum(u_a, 1e-30)), 0.0), 1)
            d_p += tl.sum(tl.where(u_b > 0, df_b * f_b * tl.log(tl.maximum(u_b, 1e-30)), 0.0), 1)
            d_n = -tl.sum(du_a * u_a + du_b * u_b, 1) / n + d_p * 3.0 * (1.0 - t * t)
            norm_q = tl.sqrt(tl.sum(q * q, 1))
            d_n = tl.where(norm_q > 1e-6, d_n, 0.0)
            dq = (tl.where(q > 0, du_a, 0.0) - tl.where(q < 0, du_b, 0.0)) / n[:, None]
            dq += d_n[:, None] * q / n[:, None]
        else:
            f = tl.where(valid, _phi(q, FEATURE), 0.0)
            r = f
            if ROPE:
                r = _rope(f, tl.where(valid, _phi(qp, FEATURE), 0.0), sin, cos, sign)
            num = mm(r, s_a, DOT)  # [M, D] @ [D, Dv]
            if MODE == "mala":
                z = scale * tl.sum(f * z_a[None, :], 1)
                inv = 1.0 / (z + 1e-6)
                d_num = (1.0 + inv)[:, None] * g * scale
                d_z = -tl.sum(g * num, 1) * scale * inv * inv - tl.sum(g * v_mean[None, :], 1)
                dv_mean += tl.sum(-z[:, None] * g, 0)
                dz_a += tl.sum((d_z * scale)[:, None] * f, 0)
                extra = (d_z * scale)[:, None] * z_a[None, :]
            else:
                rms = tl.sqrt(tl.sum(num * num, 1) / DV)
                c = 1.0 / (rms + 1e-6)
                proj = tl.where(rms > 0, tl.sum(g * num, 1) * c * c / (DV * tl.maximum(rms, 1e-30)), 0.0)
                d_num = c[:, None] * g - proj[:, None] * num
                extra = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
            if MODE == "mala":
                ds_a += mm(tl.trans(r), d_num, WIDE)  # [D, M] @ [M, Dv]
            else:
                ds_a += mm(tl.trans(r), d_num, DOT)  # [D, M] @ [M, Dv]
            dr = mm(d_num, tl.trans(s_a), DOT)  # [M, Dv] @ [Dv, D]
            if ROPE:
                dr = _rope_t(dr, mm(d_num, tl.trans(tl.load(sp_ptr)), DOT), sin_p, cos, sign)  # [M, Dv] @ [Dv, D]
            dq = tl.where(valid, (dr + extra) * _phi_grad(q, FEATURE), 0.0)
        store_tile(DQ + b * sqb + h * sqh, rows, offs_d, sqn, sqd, NQ, D, dq)
    base = pid_bh * SPLITS + split
    state = DS_PART + base * ROW + offs_d[:, None] * BLOCK_DV + offs_dv[None, :]
    tl.store(state, ds_a)
    tl.store(state + BLOCK_D * BLOCK_DV, ds_b)
    tl.store(DZ_PART + base * ROW + offs_d, dz_a)
    tl.store(DZ_PART + base * ROW + BLOCK_D + offs_d, dz_b)
    tl.store(DVS_PART + base * ROW + offs_dv, dv_mean)


@triton.jit
def _state_bwd(
    K,
    V,
    SIN,
    COS,
    DS,
    DZ,
    DVS,
    DK,
    DV_,
    skb,
    skh,
    skn,
    skd,
    svb,
    svh,
    svn,
    svd,
    srb,
    srh,
    srn,
    srd,
    scb,
    sch,
    scn,
    scd,
    H,
    NK,
    D,
    DV,
    inv_nk,
    ROW,
    DOT: tl.constexpr,
    MODE: tl.constexpr,
    FEATURE: tl.constexpr,
    ROPE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    partner = offs_d ^ 1
    sign = tl.where(offs_d % 2 == 0, -1.0, 1.0)
    valid = (rows[:, None] < NK) & (offs_d[None, :] < D)
    k = load_tile(K + (b * skb + h * skh), rows, offs_d, skn, skd, NK, D).to(tl.float32)
    v = load_tile(V + (b * svb + h * svh), rows, offs_dv, svn, svd, NK, DV).to(tl.float32)
    ds_ptr = DS + pid_bh * ROW + offs_d[:, None] * BLOCK_DV + offs_dv[None, :]
    dsp_ptr = DS + pid_bh * ROW + partner[:, None] * BLOCK_DV + offs_dv[None, :]
    ds_a = tl.load(ds_ptr)
    dz_a = tl.load(DZ + pid_bh * ROW + offs_d)
    if ROPE:
        kp = load_tile(K + (b * skb + h * skh), rows, partner, skn, skd, NK, D).to(tl.float32)
        sin = load_tile(SIN + (b * srb + h * srh), rows, offs_d, srn, srd, NK, D).to(tl.float32)
        sin_p = load_tile(SIN + (b * srb + h * srh), rows, partner, srn, srd, NK, D).to(tl.float32)
        cos = load_tile(COS + (b * scb + h * sch), rows, offs_d, scn, scd, NK, D).to(tl.float32)
    # dψ = v·dSᵀ (then Rᵀ), dφ = Rᵀdψ + dz, dv = ψ·dS; all scaled by 1/Nk (state and z are means).
    dpsi_a = mm(v, tl.trans(ds_a), DOT)  # [N, Dv] @ [Dv, D]
    if ROPE:
        dpsi_a = _rope_t(dpsi_a, mm(v, tl.trans(tl.load(dsp_ptr)), DOT), sin_p, cos, sign)  # [N, Dv] @ [Dv, D]
    df_a = (dpsi_a + dz_a[None, :]) * inv_nk
    if MODE == "nala":
        ds_b = tl.load(ds_ptr + BLOCK_D * BLOCK_DV)
        dz_b = tl.load(DZ + pid_bh * ROW + BLOCK_D + offs_d)
        dpsi_b = mm(v, tl.trans(ds_b), DOT)  # [N, Dv] @ [Dv, D]
        if ROPE:
            dpsi_b = _rope_t(
                dpsi_b,
                mm(v, tl.trans(tl.load(dsp_ptr + BLOCK_D * BLOCK_DV)), DOT),  # [N, Dv] @ [Dv, D]
                sin_p,
                cos,
                sign,
            )
        df_b = (dpsi_b + dz_b[None, :]) * inv_nk
        k3 = k * k * k
        f_a = tl.maximum(k3, 0.0)
        f_b = tl.maximum(-k3, 0.0)
        psi_a = f_a
        psi_b = f_b
        if ROPE:
            kp3 = kp * kp * kp
            psi_a = _rope(f_a, tl.maximum(kp3, 0.0), sin, cos, sign)
            psi_b = _rope(f_b, tl.maximum(-kp3, 0.0), sin, cos, sign)
        dk = 3.0 * k * k * (tl.where(k > 0, df_a, 0.0) - tl.where(k < 0, df_b, 0.0))
        dv = (mm(psi_a, ds_a, DOT) + mm(psi_b, ds_b, DOT)) * inv_nk  # [N, D] @ [D, Dv], twice
    else:
        f = tl.where(valid, _phi(k, FEATURE), 0.0)
        psi = f
        if ROPE:
            psi = _rope(f, tl.where(valid, _phi(kp, FEATURE), 0.0), sin, cos, sign)
        dk = tl.where(valid, df_a * _phi_grad(k, FEATURE), 0.0)
        dv = mm(psi, ds_a, DOT) * inv_nk  # [N, D] @ [D, Dv]
        if MODE == "mala":
            dv += tl.load(DVS + pid_bh * ROW + offs_dv)[None, :] * inv_nk
    store_tile(DK + b * skb + h * skh, rows, offs_d, skn, skd, NK, D, dk)
    store_tile(DV_ + b * svb + h * svh, rows, offs_dv, svn, svd, NK, DV, dv)


# Launches take 8 warps: with 4, ptxas spilled up to 57 KB per thread block (nala's query backward, fp32, D = 64)
# and 11.5 KB in bf16 at D = 128; with 8, 3.6 KB and 3.3 KB (scripts/kernel_shared_memory.py). The exception,
# nala's key backward in fp32, spills more with 8 (15.3 KB) than with 4 (3.4 KB).


def token_tiling(block_d: int, block_dv: int, itemsize: int, shared_memory: int) -> tuple[int, int] | None:
    """Tokens per tile and software-pipeline stages for a GPU with `shared_memory` bytes per block, or None
    when the states do not fit it. The kernels hold [D, Dv] states (two for nala) in fp32: at D = Dv = 128
    Triton's defaults (32 tokens, 3 stages) made nala's backward ask for 379 KB (an H100 has 227 KB), so wide
    states take 16 tokens and no pipelining: 156 KB, more than the 99 KB of an RTX 3090/4090. Sizes compiled
    for sm_80/89/90/100/120 by scripts/kernel_shared_memory.py."""
    size, tokens = block_d * block_dv, 64 if max(block_d, block_dv) <= 32 else 32
    if size >= 128 * 128:
        return (16, 1) if shared_memory >= AMPERE_SHARED_MEMORY else None
    if shared_memory < AMPERE_SHARED_MEMORY:  # RTX 3090/4090
        return (16, 1) if max(block_d, block_dv) >= 128 else (tokens, 2 if itemsize == 4 else 3)
    if shared_memory < HOPPER_SHARED_MEMORY and size >= 128 * 64:  # A100
        return 32, 2
    return tokens, 3


def unfit_reason(q: Tensor, v: Tensor, options: dict | None = None, causal: bool = False) -> str | None:
    """Why the kernels' states do not fit q's GPU, or None when they do."""
    limit = shared_memory_limit(q.device)
    if token_tiling(block_dim(q.shape[-1]), block_dim(v.shape[-1]), q.element_size(), limit) is None:
        return (
            f"head dims D={q.shape[-1]}, Dv={v.shape[-1]}: the fused linear kernels hold fp32 [D, Dv] states that "
            f"need about 156 KB of shared memory per block at D·Dv = 128², more than the {limit} bytes this GPU gives"
        )
    return None


def _state_rows(heads: int, splits: int, block_d: int, block_dv: int, device: torch.device) -> Tensor:
    """One fp32 row per (head, split) holding a pass's reductions side by side: the [2, D, Dv] states (two halves
    for nala), the [2, D] normalisers and the [Dv] value mean. One buffer, so the splits sum in one launch."""
    width = 2 * block_d * block_dv + 2 * block_d + block_dv
    return torch.empty(heads, splits, width, device=device, dtype=torch.float32)


def _state_views(rows: Tensor, block_d: int, block_dv: int) -> tuple[Tensor, Tensor, Tensor]:
    """The states, normalisers and value mean of `rows` (views: the kernels step between rows by its row stride)."""
    s_end = 2 * block_d * block_dv
    return rows[..., :s_end], rows[..., s_end : s_end + 2 * block_d], rows[..., s_end + 2 * block_d :]


def _sum_splits(rows: Tensor) -> Tensor:
    """[heads, splits, width] partial reductions -> [heads, width]; no launch when there is one split."""
    return rows[:, 0] if rows.shape[1] == 1 else rows.sum(1)


class LinearAttention(torch.autograd.Function):
    """mode: one of MODES, feature: one of FEATURES (mala, norm); sin, cos: RoPE angles [B, H, N, D] or None."""

    @staticmethod
    def forward(ctx, q, k, v, sin, cos, mode: str, feature: str, scale: float):
        B, H, NQ, D = q.shape
        NK, DV = k.shape[-2], v.shape[-1]
        block_d, block_dv = block_dim(D), block_dim(DV)
        tiling = token_tiling(block_d, block_dv, q.element_size(), shared_memory_limit(q.device))
        if tiling is None:
            raise ValueError(unfit_reason(q, v))
        block, stages = tiling
        rope = sin is not None
        if not rope:
            sin = cos = q  # placeholders, never read
        inv_nk = 1.0 if mode == "norm" else 1.0 / NK
        splits = reduction_splits(B * H, triton.cdiv(NK, block), q.device)
        parts = _state_rows(B * H, splits, block_d, block_dv, q.device)
        flags = dict(MODE=mode, FEATURE=feature, ROPE=rope, DOT=dot_mode(q, bounded=False))
        _state_fwd[(B * H, splits)](
            k,
            v,
            sin,
            cos,
            *_state_views(parts, block_d, block_dv),
            *strides(k),
            *strides(v),
            *strides(sin),
            *strides(cos),
            H,
            NK,
            D,
            DV,
            inv_nk,
            splits,
            parts.shape[-1],
            BLOCK_N=block,
            BLOCK_D=block_d,
            BLOCK_DV=block_dv,
            num_stages=stages,
            num_warps=8,
            **flags,
        )
        states = _sum_splits(parts)
        out = new_empty(B, H, NQ, DV, like=q)
        # each program reloads the state from L2: for 16-bit inputs at D, Dv <= 64, mala's and norm's tiles of 128
        # query rows read it 4x less often than the 32-row token tile, without spilling on sm_80/89/90
        # (scripts/kernel_shared_memory.py). nala's two states spill at 64 rows on sm_80/89 (768 bytes), and fp32
        # tiles of 128 rows spill everywhere (up to 15 KB on sm_80): those keep the token tile
        wide = q.element_size() == 2 and max(block_d, block_dv) <= 64 and mode != "nala"
        rows = seq_block(NQ, 128 if wide else block)
        _apply_fwd[(triton.cdiv(NQ, rows), B * H)](
            q,
            sin,
            cos,
            *_state_views(states, block_d, block_dv),
            out,
            *strides(q),
            *strides(sin),
            *strides(cos),
            *strides(out),
            H,
            NQ,
            D,
            DV,
            scale,
            states.shape[-1],
            BLOCK_M=rows,
            BLOCK_D=block_d,
            BLOCK_DV=block_dv,
            num_stages=stages,
            num_warps=8,
            **flags,
        )
        ctx.save_for_backward(q, k, v, sin, cos, states)
        ctx.args = (mode, feature, scale, rope, block, stages, inv_nk)
        return out

    @staticmethod
    @once_differentiable  # a fused backward: differentiating it again raises, never gives zeros
    def backward(ctx, dout):
        q, k, v, sin, cos, states = ctx.saved_tensors
        mode, feature, scale, rope, block, stages, inv_nk = ctx.args
        B, H, NQ, D = q.shape
        NK, DV = k.shape[-2], v.shape[-1]
        block_d, block_dv = block_dim(D), block_dim(DV)
        flags = dict(MODE=mode, FEATURE=feature, ROPE=rope, DOT=dot_mode(q, bounded=False))
        splits = reduction_splits(B * H, triton.cdiv(NQ, block), q.device)
        d_parts = _state_rows(B * H, splits, block_d, block_dv, q.device)
        dq = new_empty(*q.shape, like=q)
        q_c = q.contiguous()  # dq is written with q's (contiguous) strides
        _apply_bwd[(B * H, splits)](
            q_c,
            sin,
            cos,
            *_state_views(states, block_d, block_dv),
            dout,
            dq,
            *_state_views(d_parts, block_d, block_dv),
            *strides(q_c),
            *strides(sin),
            *strides(cos),
            *strides(dout),
            H,
            NQ,
            D,
            DV,
            scale,
            splits,
            d_parts.shape[-1],
            BLOCK_M=block,
            BLOCK_D=block_d,
            BLOCK_DV=block_dv,
            WIDE=wide_dot_mode(q),
            num_stages=stages,
            num_warps=8,
            **flags,
        )
        d_states = _sum_splits(d_parts)
        k_c, v_c = k.contiguous(), v.contiguous()
        dk, dv = new_empty(*k.shape, like=k), new_empty(*v.shape, like=v)
        _state_bwd[(triton.cdiv(NK, block), B * H)](
            k_c,
            v_c,
            sin,
            cos,
            *_state_views(d_states, block_d, block_dv),
            dk,
            dv,
            *strides(k_c),
            *strides(v_c),
            *strides(sin),
            *strides(cos),
            H,
            NK,
            D,
            DV,
            inv_nk,
            d_states.shape[-1],
            BLOCK_N=block,
            BLOCK_D=block_d,
            BLOCK_DV=block_dv,
            num_stages=stages,
            num_warps=4 if mode == "nala" and q.element_size() == 4 else 8,
            **flags,
        )
        return dq, dk, dv, None, None, None, None, None


def rope_views(rope, q: Tensor):
    """(sin, cos) as fp32 views of q's shape, or (None, None) without RoPE."""
    if rope is None:
        return None, None
    return tuple(t.to(torch.float32).expand(q.shape) for t in rope)


__all__ = ["FEATURES", "MODES", "LinearAttention", "rope_views", "token_tiling", "unfit_reason"]
