"""What each attention kind is: its reference function, the options it takes and the forms it has."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import options as opt
from .ops.lightning.reference import lightning_attention
from .ops.local.reference import local_attention
from .ops.mala.reference import mala_attention
from .ops.nala.reference import nala_attention
from .ops.norm.reference import FEATURE_MAPS, norm_attention
from .ops.sigmoid.reference import sigmoid_attention
from .ops.soft.reference import soft_attention
from .ops.softmax.reference import softmax_attention


@dataclass(frozen=True)
class Option:
    default: Any
    check: Callable


@dataclass(frozen=True)
class Kind:
    reference: Callable
    causal: bool  # has a causal form
    cross: bool  # allows Nq != Nk (non-causal)
    scale: bool  # takes `scale` (default D^-1/2)
    quadratic: bool = False  # a weight per (query, key) pair: time and reference memory grow with Nq·Nk
    options: Mapping[str, Option] = field(default_factory=dict)
    triton: str | None = None  # "module:function" of the fused path, imported on first use


CHUNK = Option(64, opt.integer("chunk_size", 1))
ROPE = Option(None, opt.rope)

KIND_TABLE: dict[str, Kind] = {
    "softmax": Kind(
        softmax_attention, causal=True, cross=True, scale=True, quadratic=True, triton="flash_triton:softmax_attention"
    ),
    "sigmoid": Kind(
        sigmoid_attention,
        causal=True,
        cross=True,
        scale=True,
        quadratic=True,
        options={"bias": Option(None, opt.real("bias"))},
        triton="flash_triton:sigmoid_attention",
    ),
    "nala": Kind(
        nala_attention,
        causal=False,
        cross=True,
        scale=False,
        options={"rope": ROPE},
        triton="linear_triton:nala_attention",
    ),
    "mala": Kind(
        mala_attention,
        causal=False,
        cross=True,
        scale=True,
        options={"rope": ROPE},
        triton="linear_triton:mala_attention",
    ),
    "norm": Kind(
        norm_attention,
        causal=True,
        cross=True,
        scale=False,
        options={"feature_map": Option("elu1", opt.choice("feature_map", tuple(FEATURE_MAPS))), "chunk_size": CHUNK},
        triton="linear_triton:norm_attention",
    ),
    "lightning": Kind(
        lightning_attention,
        causal=True,
        cross=True,
        scale=False,
        options={"slopes": Option(None, opt.slopes), "chunk_size": CHUNK},
        triton="lightning.triton:lightning_attention",
    ),
    "soft": Kind(
        soft_attention,
        causal=False,
        cross=True,
        scale=False,
        options={
            "num_landmarks": Option(49, opt.integer("num_landmarks", 1)),
            "newton_iters": Option(20, opt.integer("newton_iters", 0)),
            "landmarks": Option(None, opt.landmarks),
        },
        triton="soft.triton:soft_attention",
    ),
    "local": Kind(
        local_attention,
        causal=True,
        cross=False,
        scale=True,
        quadratic=True,
        options={"block_size": Option(64, opt.integer("block_size", 1))},
        triton="flash_triton:local_attention",
    ),
}
