"""Naive float64 attention for tests, written straight from the formulas in docs/kernels.md: each kind builds its
full Nq×Nk weight matrix W (where it has one) and returns W @ V. Independent of kernels/."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def rel_rms(ref: Tensor, out: Tensor) -> float:
    """RMS(ref − out) / RMS(ref), fla's tolerance measure."""
    ref, out = ref.double(), out.double()
    return ((ref - out).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt().clamp_min(1e-300)).item()


def causal_mask(nq: int, nk: int) -> Tensor:
    i = torch.arange(nq)[:, None]
    j = torch.arange(nk)[None, :]
    return j <= i


def rotate(x: Tensor, theta: Tensor) -> Tensor:
    """RoPE as complex multiplication: pair (x[2m], x[2m+1]) -> (x[2m] + i·x[2m+1])·e^{iθ_m}."""
    pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(theta), theta)).flatten(-2)


def softmax(q, k, v, *, causal=False, scale=None):
    s = q.shape[-1] ** -0.5 if scale is None else scale
    logits = s * torch.einsum("bhid,bhjd->bhij", q, k)
    if causal:
        logits = logits.masked_fill(~causal_mask(q.shape[-2], k.shape[-2]), -math.inf)
    w = torch.exp(logits - logits.amax(-1, keepdim=True))
    w = w / w.sum(-1, keepdim=True)
    return w @ v


def sigmoid(q, k, v, *, causal=False, scale=None, bias=None):
    s = q.shape[-1] ** -0.5 if scale is None else scale
    b = -math.log(k.shape[-2]) if bias is None else bias
    w = 1.0 / (1.0 + torch.exp(-(s * torch.einsum("bhid,bhjd->bhij", q, k) + b)))
    if causal:
        w = w * causal_mask(q.shape[-2], k.shape[-2])
    return w @ v


def nala(q, k, v, *, theta=None):
    """theta: RoPE angles [N, D/2] (numerator only), or None."""
    n = q.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    p = 3 * (0.5 + torch.tanh(n))
    qa, qb = (q.clamp_min(0) / n) ** p, ((-q).clamp_min(0) / n) ** p
    kc = k * k * k
    ka, kb = kc.clamp_min(0), (-kc).clamp_min(0)
    plain = torch.einsum("bhid,bhjd->bhij", torch.cat([qa, qb], -1), torch.cat([ka, kb], -1))
    if theta is not None:
        qa, qb, ka, kb = (rotate(t, theta) for t in (qa, qb, ka, kb))
    rotated = torch.einsum("bhid,bhjd->bhij", torch.cat([qa, qb], -1), torch.cat([ka, kb], -1))
    nk = k.shape[-2]
    w = (rotated / nk) / (plain.sum(-1, keepdim=True) / nk + 1e-6)
    return w @ v


def elu1(x):
    return torch.where(x > 0, x + 1, torch.exp(x))


def mala(q, k, v, *, scale=None, theta=None):
    s = q.shape[-1] ** -0.5 if scale is None else scale
    fq, fk = elu1(q), elu1(k)
    nk = k.shape[-2]
    z = s * torch.einsum("bhid,bhjd->bhij", fq, fk).sum(-1, keepdim=True) / nk
    if theta is not None:
        fq, fk = rotate(fq, theta), rotate(fk, theta)
    w = (1 + 1 / (z + 1e-6)) * s * torch.einsum("bhid,bhjd->bhij", fq, fk) / nk - z / nk
    return w @ v


def norm(q, k, v, *, causal=False, feature_map="elu1"):
    phi = elu1 if feature_map == "elu1" else (lambda x: x.clamp_min(0))
    w = torch.einsum("bhid,bhjd->bhij", phi(q), phi(k))
    if causal:
        w = w * causal_mask(q.shape[-2], k.shape[-2])
    o = w @ v
    return o / ((o * o).mean(-1, keepdim=True).sqrt() + 1e-6)


def lightning(q, k, v, *, causal=False, slopes=None):
    H = q.shape[1]
    if slopes is None:
        if math.log2(H).is_integer():
            slopes = torch.tensor([2 ** (-8 * (h + 1) / H) for h in range(H)], dtype=q.dtype)
        else:  # ALiBi's interleaving, worked by hand
            slopes = torch.tensor(
                {3: [2**-4, 2**-8, 2**-2], 6: [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]}[H], dtype=q.dtype
            )
    t = torch.arange(q.shape[-2], dtype=q.dtype)[:, None]
    s = torch.arange(k.shape[-2], dtype=q.dtype)[None, :]
    decay = torch.exp(-slopes.view(H, 1, 1) * (t - s).abs())
    w = decay * torch.einsum("bhid,bhjd->bhij", q, k)
    if causal:
        w = w * causal_mask(q.shape[-2], k.shape[-2])
    return w @ v


def gaussian(a, b):
    return torch.exp(-0.5 * ((a[..., :, None, :] - b[..., None, :, :]) ** 2).sum(-1))


def segment_landmarks(k, m):
    """Means of m contiguous segments; the first N mod m segments hold one extra key."""
    n = k.shape[-2]
    m = min(m, n)
    sizes = [n // m + (1 if i < n % m else 0) for i in range(m)]
    starts = [sum(sizes[:i]) for i in range(m)]
    return torch.stack([k[..., a : a + size, :].mean(-2) for a, size in zip(starts, sizes, strict=True)], -2)


def newton_schulz(a, iters):
    eye = torch.eye(a.shape[-1], dtype=a.dtype)
    col = a.abs().sum(-2).max(-1).values
    row = a.abs().sum(-1).max(-1).values
    x = a.transpose(-1, -2) / (col * row)[..., None, None]
    for _ in range(iters):
        x = x @ (2 * eye - a @ x)
    return x


def soft(q, k, v, *, num_landmarks=49, newton_iters=20, landmarks=None):
    lm = segment_landmarks(k, num_landmarks) if landmarks is None else landmarks.expand(*k.shape[:2], -1, -1)
    w = gaussian(q, lm) @ newton_schulz(gaussian(lm, lm), newton_iters) @ gaussian(k, lm).transpose(-1, -2)
    return w @ v


def local(q, k, v, *, causal=False, scale=None, block_size=64):
    s = q.shape[-1] ** -0.5 if scale is None else scale
    n = q.shape[-2]
    block = torch.arange(n) // block_size
    allowed = block[:, None] == block[None, :]
    if causal:
        allowed = allowed & causal_mask(n, n)
    logits = (s * torch.einsum("bhid,bhjd->bhij", q, k)).masked_fill(~allowed, -math.inf)
    w = torch.exp(logits - logits.amax(-1, keepdim=True))
    return (w / w.sum(-1, keepdim=True)) @ v


NAIVE = {
    "softmax": softmax,
    "sigmoid": sigmoid,
    "nala": nala,
    "mala": mala,
    "norm": norm,
    "lightning": lightning,
    "soft": soft,
    "local": local,
}
