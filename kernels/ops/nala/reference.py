"""NaLa: norm-aware linear attention (NaLaFormer, class NormAwareLinearAttn)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..shared import apply_rope

EPS = 1e-6


def _query_features(q: Tensor) -> tuple[Tensor, Tensor]:
    """φq halves: (relu(±q)/n)^p with n = max(‖q‖, 1e-6) and the norm-aware power p = 3(0.5 + tanh n)."""
    n = q.norm(dim=-1, keepdim=True).clamp_min(EPS)
    power = 3.0 * (0.5 + torch.tanh(n))
    return (torch.relu(q) / n) ** power, (torch.relu(-q) / n) ** power


def _key_features(k: Tensor) -> tuple[Tensor, Tensor]:
    """φk halves: relu(±k³)."""
    k3 = k**3
    return torch.relu(k3), torch.relu(-k3)


def nala_attention(q: Tensor, k: Tensor, v: Tensor, *, rope: tuple[Tensor, Tensor] | None) -> Tensor:
    """O_i = φq(q_i)ᵀ·mean_j φk(k_j)v_jᵀ / (φq(q_i)·mean_j φk(k_j) + 1e-6); RoPE rotates each
    half of φq, φk in the numerator only. Never forms the Nq×Nk matrix."""
    q_halves, k_halves = _query_features(q), _key_features(k)
    phi_q, phi_k = torch.cat(q_halves, dim=-1), torch.cat(k_halves, dim=-1)
    denominator = phi_q @ phi_k.mean(dim=-2).unsqueeze(-1) + EPS  # [B,H,Nq,1]
    if rope is not None:
        sin, cos = rope
        phi_q = torch.cat([apply_rope(h, sin, cos) for h in q_halves], dim=-1)
        phi_k = torch.cat([apply_rope(h, sin, cos) for h in k_halves], dim=-1)
    state = phi_k.transpose(-1, -2) @ v / k.shape[-2]  # [B,H,2D,Dv]
    return (phi_q @ state) / denominator
