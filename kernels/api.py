"""kernels.attention: one entry point for every attention kind, with argument checks and dispatch."""

from __future__ import annotations

import importlib
import importlib.util
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .custom_op import compiled_attention
from .registry import KIND_TABLE

KINDS: tuple[str, ...] = tuple(KIND_TABLE)
BACKENDS: tuple[str, ...] = ("auto", "reference", "triton")
_LOW_PRECISION = (torch.float16, torch.bfloat16)
_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_TRITON_DIM = 128


@dataclass(frozen=True)
class Plan:
    """Which path kernels.attention takes for a call, and why."""

    path: str  # "sdpa", "triton" or "reference"
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kind: str,
    *,
    causal: bool = False,
    scale: float | None = None,
    backend: str = "auto",
    **options: Any,
) -> Tensor:
    """Attention of kind `kind` (one of KINDS): q [B,H,Nq,D], k [B,H,Nk,D], v [B,H,Nk,Dv] -> [B,H,Nq,Dv].

    Formulas and options: docs/kernels.md. fp16/bf16 inputs are computed with fp32 accumulation and
    the result is returned in q's dtype. `backend`: "reference" (plain PyTorch, any device, autograd),
    "triton" (fused forward and backward kernels; CUDA, or CPU under TRITON_INTERPRET=1) or "auto"
    (the fastest correct path for the device; `explain` says which). B, H or Nq of 0 give the empty result.
    Bad arguments raise ValueError or TypeError naming the argument, what was given and what is expected.
    """
    if torch.compiler.is_compiling():  # torch.compile sees one opaque custom op (kernels/custom_op.py)
        out = compiled_attention(q, k, v, kind, causal=causal, scale=scale, backend=backend, **options)
        if out is not None:
            return out
    spec, resolved = _validate(q, k, v, kind, causal, scale, backend, options)
    if q.numel() == 0:  # no batch, head or query: the empty result SDPA also gives, still part of the graph
        return q.new_zeros(*q.shape[:-1], v.shape[-1]) + 0 * (q.sum() + k.sum() + v.sum())
    plan = _plan(spec, kind, q, v, backend, resolved, causal)
    if plan.path == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=resolved["scale"])
    if spec.causal:
        resolved["causal"] = causal
    if plan.path == "triton":
        return _import(spec.triton)(q, k, v, **resolved)
    return _run_reference(spec, q, k, v, resolved)


def explain(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kind: str,
    *,
    causal: bool = False,
    scale: float | None = None,
    backend: str = "auto",
    **options: Any,
) -> Plan:
    """The path `attention` would take for these arguments (same checks, nothing computed)."""
    spec, resolved = _validate(q, k, v, kind, causal, scale, backend, options)
    return _plan(spec, kind, q, v, backend, resolved, causal)


def _validate(q, k, v, kind, causal, scale, backend, options):
    spec = _check_kind(kind)
    _check_backend(backend)
    _check_tensors(q, k, v)
    nq, nk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    if not isinstance(causal, bool):
        raise TypeError(f"causal: expected a bool, got {causal!r} ({type(causal).__name__})")
    if causal and not spec.causal:
        causal_kinds = tuple(name for name, s in KIND_TABLE.items() if s.causal)
        raise ValueError(f"causal: kind {kind!r} has no causal form; causal=True needs one of {causal_kinds}")
    if causal and nq != nk:
        raise ValueError(f"causal: needs Nq == Nk (q and k index the same positions), got Nq={nq}, Nk={nk}")
    if nq != nk and not spec.cross:
        raise ValueError(f"k: kind {kind!r} needs Nq == Nk (blocks pair queries with keys), got Nq={nq}, Nk={nk}")
    resolved = _resolve_options(kind, spec, q, k, options)
    if spec.scale:
        resolved["scale"] = d**-0.5 if scale is None else _check_scale(scale)
    elif scale is not None:
        raise TypeError(f"scale: kind {kind!r} takes no scale (it has none in its formula), got {scale!r}")
    return spec, resolved


# What SDPA runs on each device type (it picks among these by dtype, shape and GPU).
_SDPA_KERNELS = {
    "cuda": "FlashAttention, cuDNN or memory-efficient kernels on the GPU",
    "cpu": "its fused CPU kernel, or the plain math path",
}


def _plan(spec, kind: str, q: Tensor, v: Tensor, backend: str, resolved: dict[str, Any], causal: bool) -> Plan:
    if backend == "reference":
        return Plan("reference", "backend='reference' was requested")
    blocker = _triton_blocker(spec, kind, q, v, resolved, causal)
    if backend == "triton":
        if blocker:
            raise ValueError(f"backend: 'triton' cannot run this call: {blocker}")
        return Plan("triton", "backend='triton' was requested")
    if spec.sdpa:
        kernels = _SDPA_KERNELS.get(_device_type(q), f"its {q.device.type} kernel")
        return Plan("sdpa", f"{kind} on 'auto' uses torch SDPA ({kernels})")
    if _device_type(q) != "cuda":
        return Plan("reference", f"tensors on {q.device}: the fused kernels run on CUDA (the interpreter is for tests)")
    if blocker:
        return Plan("reference", blocker)
    return Plan("triton", "fused Triton kernel on CUDA")


def _triton_blocker(spec, kind: str, q: Tensor, v: Tensor, resolved: dict[str, Any], causal: bool) -> str | None:
    """Why the fused path cannot run this call, or None when it can."""
    if spec.triton is None:
        return f"kind {kind!r} has no fused Triton kernel yet"
    if _device_type(q) != "cuda" and not (_device_type(q) == "cpu" and _interpreting()):
        return f"tensors on {q.device}: Triton runs on CUDA, or on the CPU under TRITON_INTERPRET=1"
    if importlib.util.find_spec("triton") is None:
        return "the triton package is not installed"
    if q.dtype not in _TRITON_DTYPES:
        return f"dtype {q.dtype}: the kernels take {_TRITON_DTYPES}"
    if max(q.shape[-1], v.shape[-1]) > MAX_TRITON_DIM:
        return f"head dims D={q.shape[-1]}, Dv={v.shape[-1]}: the kernels take at most {MAX_TRITON_DIM}"
    for name, value in resolved.items():
        tensors = value if isinstance(value, tuple) else (value,)
        if name not in spec.differentiable and any(isinstance(t, Tensor) and t.requires_grad for t in tensors):
            differentiated = ", ".join(("q, k and v", *spec.differentiable))
            return f"{name} requires grad: the fused kernels differentiate {differentiated} only"
    from .ops.common.triton_utils import SMALLEST_SHARED_MEMORY, shared_memory_limit

    if (limit := shared_memory_limit(q.device)) < SMALLEST_SHARED_MEMORY:
        return (
            f"this GPU gives a block {limit} bytes of shared memory; the kernels' tiles need {SMALLEST_SHARED_MEMORY}"
        )
    if spec.triton_limits:
        return _import(spec.triton_limits)(q, v, resolved, causal)
    return None


def _import(path: str):
    """A function named "module:function" under kernels/ops."""
    module, function = path.split(":")
    return getattr(importlib.import_module(f"kernels.ops.{module}"), function)


def _device_type(t: Tensor) -> str:
    return t.device.type


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _run_reference(spec, q: Tensor, k: Tensor, v: Tensor, resolved: dict[str, Any]) -> Tensor:
    compute = torch.float32 if q.dtype in _LOW_PRECISION else q.dtype
    q32, k32, v32 = (t.to(compute) for t in (q, k, v))
    resolved = {name: _to_dtype(value, compute) for name, value in resolved.items()}
    return spec.reference(q32, k32, v32, **resolved).to(q.dtype)


def _to_dtype(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, Tensor):
        return value.to(dtype)
    if isinstance(value, tuple):
        return tuple(_to_dtype(v, dtype) for v in value)
    return value


def _check_kind(kind: object):
    if not isinstance(kind, str) or kind not in KIND_TABLE:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    return KIND_TABLE[kind]


def _check_backend(backend: object) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")


def _check_tensors(q: object, k: object, v: object) -> None:
    named = {"q": q, "k": k, "v": v}
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(
                f"{name}: expected a floating-point tensor (float16, bfloat16, float32, float64), got {t.dtype}"
            )
        if t.dim() != 4:
            raise ValueError(f"{name}: expected a 4-D tensor [B, H, N, D], got shape {tuple(t.shape)}")
        if t.shape[-1] == 0:
            raise ValueError(f"{name}: expected a head dim >= 1, got shape {tuple(t.shape)}")
    for name in ("k", "v"):
        t = named[name]
        if t.dtype != q.dtype:
            raise TypeError(f"{name}: expected dtype {q.dtype} like q, got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name}: expected a tensor on {q.device} like q, got one on {t.device}")
        if t.shape[0] != q.shape[0]:
            raise ValueError(
                f"{name}: expected batch size {q.shape[0]} like q, got {t.shape[0]} (shape {tuple(t.shape)})"
            )
        if t.shape[1] != q.shape[1]:
            raise ValueError(f"{name}: expected {q.shape[1]} heads like q, got {t.shape[1]} (shape {tuple(t.shape)})")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k: expected head dim {q.shape[-1]} like q, got {k.shape[-1]} (shape {tuple(k.shape)})")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v: expected {k.shape[-2]} tokens like k, got {v.shape[-2]} (shape {tuple(v.shape)})")
    if k.shape[-2] == 0 and q.shape[-2] > 0:
        raise ValueError(f"k: expected >= 1 key for {q.shape[-2]} queries, got shape {tuple(k.shape)}")


def _check_scale(scale: object) -> float:
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale: expected a real number or None, got {scale!r} ({type(scale).__name__})")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale: expected a finite number > 0, got {scale}")
    return float(scale)


def _resolve_options(kind: str, spec, q: Tensor, k: Tensor, given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        takes = tuple(spec.options) + (("scale",) if spec.scale else ())
        raise TypeError(f"{unknown[0]}: kind {kind!r} does not take this option; it takes {takes or 'none'}")
    for first, second in spec.exclusive:
        if given.get(first) is not None and given.get(second) is not None:
            raise ValueError(f"{first}: give {first} or {second}, not both")
    resolved = {}
    for name, option in spec.options.items():
        value = given.get(name, option.default)
        if value is not None:
            resolved[name] = option.check(value, q, k)
        else:
            resolved[name] = option.fallback(q, k) if option.fallback else None
    return resolved
