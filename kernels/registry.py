"""What each attention kind is: its reference function, its fused path, the options it takes and the forms it has.
The one place that knows the kinds: kernels.attention, the benchmarks, the tests and scripts read this table, so a
new kind is its folder under kernels/ops/ and one entry here."""

from __future__ import annotations

import math
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
    check: Callable  # (value, q, k) -> the value resolved, or an error naming the option
    fallback: Callable | None = None  # (q, k) -> the value used when the option is None


def _log_keys(q, k) -> float:
    """FlashSigmoid's default bias, −ln(Nk) (0 without keys, where nothing is computed)."""
    return -math.log(max(k.shape[-2], 1))


@dataclass(frozen=True)
class Kind:
    reference: Callable
    causal: bool  # has a causal form
    scale: bool  # takes `scale` (default D^-1/2)
    cross: bool = True  # allows Nq != Nk (non-causal)
    quadratic: bool = False  # a weight per (query, key) pair: time and reference memory grow with Nq·Nk
    options: Mapping[str, Option] = field(default_factory=dict)
    exclusive: tuple[tuple[str, str], ...] = ()  # pairs of options that cannot both be given
    triton: str | None = None  # "module:function" under kernels/ops of the fused path, imported on first use
    # "module:function" (q, v, options, causal) -> why the fused path cannot run this call, or None
    triton_limits: str | None = None
    differentiable: tuple[str, ...] = ()  # tensor options the fused path differentiates (beside q, k, v)
    sdpa: bool = False  # backend "auto" runs torch's scaled_dot_product_attention (same formula)


CHUNK = Option(64, opt.integer("chunk_size", 1))
ROPE = Option(None, opt.rope)
# NaLa and MALA: non-causal, RoPE as their one option, run by the shared two-pass linear engine.
TWO_PASS_LINEAR = dict(causal=False, options={"rope": ROPE}, triton_limits="common.linear:unfit_reason")

KIND_TABLE: dict[str, Kind] = {
    "softmax": Kind(
        softmax_attention,
        causal=True,
        scale=True,
        quadratic=True,
        triton="softmax.triton:softmax_attention",
        sdpa=True,
    ),
    "sigmoid": Kind(
        sigmoid_attention,
        causal=True,
        scale=True,
        quadratic=True,
        options={"bias": Option(None, opt.real("bias"), fallback=_log_keys)},
        triton="sigmoid.triton:sigmoid_attention",
    ),
    "nala": Kind(nala_attention, scale=False, triton="nala.triton:nala_attention", **TWO_PASS_LINEAR),
    "mala": Kind(mala_attention, scale=True, triton="mala.triton:mala_attention", **TWO_PASS_LINEAR),
    "norm": Kind(
        norm_attention,
        causal=True,
        scale=False,
        options={"feature_map": Option("elu1", opt.choice("feature_map", tuple(FEATURE_MAPS))), "chunk_size": CHUNK},
        triton="norm.triton:norm_attention",
        triton_limits="norm.triton:unfit_reason",
    ),
    "lightning": Kind(
        lightning_attention,
        causal=True,
        scale=False,
        options={"slopes": Option(None, opt.slopes), "chunk_size": CHUNK},
        triton="lightning.triton:lightning_attention",
    ),
    "soft": Kind(
        soft_attention,
        causal=False,
        scale=False,
        options={
            "num_landmarks": Option(49, opt.integer("num_landmarks", 1)),
            "newton_iters": Option(20, opt.integer("newton_iters", 0)),
            "landmarks": Option(None, opt.landmarks),
        },
        exclusive=(("num_landmarks", "landmarks"),),
        triton="soft.triton:soft_attention",
        triton_limits="soft.triton:unfit_reason",
        differentiable=("landmarks",),
    ),
    "local": Kind(
        local_attention,
        causal=True,
        cross=False,
        scale=True,
        quadratic=True,
        options={"block_size": Option(64, opt.integer("block_size", 1))},
        triton="local.triton:local_attention",
    ),
}
