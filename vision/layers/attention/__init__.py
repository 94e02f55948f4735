"""One attention layer class per kind, on the shared KernelAttention base, and a name -> class table like timm's
(`ATTN_LAYERS`), so `VisionTransformer(attn_layer=get_attn_layer("nala"))` builds a NaLa ViT.

Optional 2-D RoPE: inside the kernel's numerator for nala and mala, on q and k for the other kinds. The q, k, v
projection is one `qkv` Linear for every kind (two thirds of it for SOFT, where K = Q), so a softmax checkpoint
loads into any kind; the extra parameters keep their initialisation.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from .base import KernelAttention
from .linear import LePE, LightningAttention, MALAAttention, NaLaAttention, NormAttention
from .soft import SoftAttention
from .softmax import LocalAttention, SigmoidAttention, SoftmaxAttention

ATTN_LAYERS: dict[str, type[KernelAttention]] = {
    layer.kind: layer
    for layer in (
        SoftmaxAttention,
        SigmoidAttention,
        NaLaAttention,
        MALAAttention,
        NormAttention,
        LightningAttention,
        SoftAttention,
        LocalAttention,
    )
}
ATTN_KINDS: tuple[str, ...] = tuple(ATTN_LAYERS)  # kernels.KINDS, in its order (tests/vision/test_layers.py)

L = TypeVar("L", bound=KernelAttention)


def get_attn_layer(kind: str) -> type[KernelAttention]:
    """The layer class of an attention kind (one of ATTN_KINDS)."""
    if kind not in ATTN_LAYERS:
        raise ValueError(f"attn_kind: expected one of {ATTN_KINDS}, got {kind!r}")
    return ATTN_LAYERS[kind]


def create_attention(kind: str, dim: int, num_heads: int = 8, **kwargs: Any) -> KernelAttention:
    """An attention layer of kind `kind`; kwargs are the layer's constructor arguments."""
    return get_attn_layer(kind)(dim, num_heads, **kwargs)


def bind(layer: type[L], **settings: Any) -> type[L]:
    """`layer` with keyword arguments fixed, still a class: timm's `attn_layer=` takes a class (it calls
    `issubclass` on it) and passes only timm's own arguments, so a model's settings (RoPE, grid, backend, ...)
    travel this way."""
    init = functools.partialmethod(layer.__init__, **settings)
    return type(layer.__name__, (layer,), {"__init__": init, "__module__": layer.__module__, "__doc__": layer.__doc__})


__all__ = [
    "ATTN_KINDS",
    "ATTN_LAYERS",
    "KernelAttention",
    "LePE",
    "LightningAttention",
    "LocalAttention",
    "MALAAttention",
    "NaLaAttention",
    "NormAttention",
    "SigmoidAttention",
    "SoftAttention",
    "SoftmaxAttention",
    "bind",
    "create_attention",
    "get_attn_layer",
]
