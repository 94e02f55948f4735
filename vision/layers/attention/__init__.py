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
    travel this way.

    The bound class is made at run time, so pickle cannot find it by name; its instances pickle as
    `_new_bound(layer, settings)` plus their state instead, which rebuilds an equal bound class on loading
    (`torch.save(model)`, spawn-based multiprocessing, `copy.deepcopy`). The settings must themselves pickle."""
    base, spec = layer.__dict__.get("__bound__", (layer, {}))  # binding a bound class: one spec of both
    spec = {**spec, **settings}

    def __reduce_ex__(self, protocol: int) -> tuple:
        if type(self) is not bound:  # a named subclass of a bound class pickles by name, as any class
            return super(bound, self).__reduce_ex__(protocol)
        return _new_bound, (base, spec), self.__getstate__()

    init = functools.partialmethod(layer.__init__, **settings)
    namespace = {
        "__init__": init,
        "__module__": layer.__module__,
        "__qualname__": layer.__qualname__,
        "__doc__": layer.__doc__,
        "__bound__": (base, spec),
        "__reduce_ex__": __reduce_ex__,
    }
    bound = type(layer.__name__, (layer,), namespace)
    return bound


def _new_bound(layer: type[L], settings: dict[str, Any]) -> L:
    """An uninitialised instance of `bind(layer, **settings)`, which unpickling then fills with its state."""
    cls = bind(layer, **settings)
    return cls.__new__(cls)


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
