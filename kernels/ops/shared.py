"""Small tensor functions shared by several attention kinds (feature maps, RoPE, RMSNorm, chunked decay)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def elu1(x: Tensor) -> Tensor:
    """φ(x) = elu(x) + 1: a positive feature map with φ(0) = 1."""
    return F.elu(x) + 1.0


def rotate_every_two(x: Tensor) -> Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...): the interleaved-pair RoPE convention."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def apply_rope(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Rotate consecutive feature pairs of x by the angles whose sin and cos are given per feature.

    sin and cos have the feature size of x with each angle repeated twice (NaLaFormer/MALA's
    theta_shift), and broadcast over x's leading dims.
    """
    return x * cos + rotate_every_two(x) * sin


def simple_rms_norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """TransNormer's SimpleRMSNorm: x / (RMS(x) + eps) over the last dim, no weight (eps outside the root)."""
    rms = x.norm(dim=-1, keepdim=True) * x.shape[-1] ** -0.5
    return x / (rms + eps)


def chunked_decay_causal(
    q: Tensor, k: Tensor, v: Tensor, slopes: Tensor | None, chunk_size: int, *, strict: bool = False
) -> Tensor:
    """O_t = Σ_{s ≤ t} exp(-slope_h·(t-s)) (q_t·k_s) v_s, in chunks so memory is linear in N.

    slopes: [H] non-negative decay rates (None: no decay). strict: sum over s < t only.
    Inside a chunk the weights are a C×C masked matrix; across chunks a running D×Dv state is
    carried (Lightning Attention-2's intra/inter split). Every exponent is ≤ 0, so nothing overflows.
    q, k: [B,H,N,D]; v: [B,H,N,Dv], all with the same N.
    """
    B, H, N, D = q.shape
    Dv = v.shape[-1]
    C = min(chunk_size, N)
    pad = (-N) % C
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    n_chunks = (N + pad) // C
    qc = q.reshape(B, H, n_chunks, C, D)
    kc = k.reshape(B, H, n_chunks, C, D)
    vc = v.reshape(B, H, n_chunks, C, Dv)

    pos = torch.arange(C, device=q.device, dtype=q.dtype)
    rel = pos[:, None] - pos[None, :]
    visible = rel >= (1 if strict else 0)
    if slopes is None:
        rate = torch.zeros(H, device=q.device, dtype=q.dtype)
    else:
        rate = slopes.to(device=q.device, dtype=q.dtype)
    intra_decay = torch.exp(-rate[:, None, None] * rel.clamp(min=0)) * visible  # [H,C,C]
    intra = (qc @ kc.transpose(-1, -2) * intra_decay[:, None]) @ vc

    # Contribution of each chunk to the state at the start of the next one, then the running state.
    k_to_end = kc * torch.exp(-rate[:, None] * (C - pos))[:, None, :, None]  # decay from s to chunk end
    updates = k_to_end.transpose(-1, -2) @ vc  # [B,H,n_chunks,D,Dv]
    chunk_decay = torch.exp(-rate * C)[:, None, None]
    state = torch.zeros(B, H, D, Dv, device=q.device, dtype=q.dtype)
    states = []
    for i in range(n_chunks):
        states.append(state)
        state = state * chunk_decay + updates[:, :, i]
    q_from_start = qc * torch.exp(-rate[:, None] * pos)[:, None, :, None]  # decay from chunk start to t
    inter = q_from_start @ torch.stack(states, dim=2)
    out = (intra + inter).reshape(B, H, n_chunks * C, Dv)
    return out[:, :, :N]
