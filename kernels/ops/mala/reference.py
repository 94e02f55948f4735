"""MALA: magnitude-aware linear attention (MAViT, class AddLinearAttention)."""

from __future__ import annotations

from torch import Tensor

from ..shared import apply_rope, elu1

EPS = 1e-6


def mala_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float, rope: tuple[Tensor, Tensor] | None) -> Tensor:
    """O_i = (1 + 1/(z_i + 1e-6))·(s/Nk)·φ(q_i)ᵀΣ_j φ(k_j)v_jᵀ − z_i·mean_j v_j, z_i = s·φ(q_i)·mean_j φ(k_j).

    The implied weights sum to one per query and may be negative. RoPE rotates φ(q), φ(k) in the
    first term only; z uses the unrotated features.
    """
    phi_q, phi_k = elu1(q), elu1(k)
    z = scale * (phi_q @ phi_k.mean(dim=-2).unsqueeze(-1))  # [B,H,Nq,1]
    if rope is not None:
        sin, cos = rope
        phi_q, phi_k = apply_rope(phi_q, sin, cos), apply_rope(phi_k, sin, cos)
    state = phi_k.transpose(-1, -2) @ v * (scale / k.shape[-2])  # [B,H,D,Dv]
    return (1.0 + 1.0 / (z + EPS)) * (phi_q @ state) - z * v.mean(dim=-2, keepdim=True)
