"""Validators for the per-kind options of kernels.attention: each checks one value against the
inputs and returns it resolved (defaults filled in), or raises an error that names the option."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{value!r} ({type(value).__name__})"


def integer(name: str, minimum: int):
    def check(value: object, q: Tensor, k: Tensor) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}: expected an int >= {minimum}, got {_describe(value)}")
        if value < minimum:
            raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
        return int(value)

    return check


def real(name: str):
    def check(value: object, q: Tensor, k: Tensor) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}: expected a real number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite number, got {value}")
        return float(value)

    return check


def choice(name: str, allowed: Sequence[str]):
    def check(value: object, q: Tensor, k: Tensor) -> str:
        if value not in allowed:
            raise ValueError(f"{name}: expected one of {tuple(allowed)}, got {value!r}")
        return value

    return check


def _float_tensor(name: str, value: object, q: Tensor) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a tensor, got {_describe(value)}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {value.dtype}")
    if value.device != q.device:
        raise ValueError(f"{name}: expected a tensor on {q.device} like q, got one on {value.device}")
    return value


def rope(value: object, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """(sin, cos), each broadcastable to [B, H, N, D] with every angle repeated on its feature pair."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"rope: expected a pair (sin, cos) of tensors, got {_describe(value)}")
    sin, cos = (_float_tensor(f"rope[{i}]", t, q) for i, t in enumerate(value))
    B, H, N, D = q.shape
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(f"rope: needs Nq == Nk (positions shared by queries and keys), got Nq={N}, Nk={k.shape[-2]}")
    if D % 2:
        raise ValueError(f"rope: rotates feature pairs, so the head dim must be even, got D={D}")
    for name, t in (("rope sin", sin), ("rope cos", cos)):
        try:
            ok = torch.broadcast_shapes(t.shape, (B, H, N, D)) == (B, H, N, D)
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"{name}: expected a shape broadcastable to [B, H, N, D] = {[B, H, N, D]}, got {list(t.shape)}"
            )
    return sin, cos


def slopes(value: object, q: Tensor, k: Tensor) -> Tensor | None:
    """Per-head decay rates [H] (λ_h = exp(−slope_h)); None selects ALiBi's slopes."""
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = torch.tensor(value, dtype=torch.float64, device=q.device)
    t = _float_tensor("slopes", value, q)
    H = q.shape[1]
    if t.shape != (H,):
        raise ValueError(f"slopes: expected shape [H] = [{H}], got {list(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError("slopes: expected finite non-negative decay rates (λ = exp(−slope) ≤ 1)")
    return t


def landmarks(value: object, q: Tensor, k: Tensor) -> Tensor | None:
    """Explicit landmarks [B, H, m, D] (or broadcastable), used instead of K's segment means."""
    if value is None:
        return None
    t = _float_tensor("landmarks", value, q)
    B, H, _, D = k.shape
    if (
        t.dim() != 4
        or t.shape[-1] != D
        or t.shape[-2] < 1
        or any(s not in (1, full) for s, full in zip(t.shape[:2], (B, H), strict=True))
    ):
        raise ValueError(
            f"landmarks: expected a tensor of shape [B, H, m, D] = [{B}, {H}, m, {D}] (m >= 1), got {list(t.shape)}"
        )
    return t
