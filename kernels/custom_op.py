"""kernels.attention as a torch.library custom op, so `torch.compile(model, fullgraph=True)` traces through it.

Under torch.compile, kernels.attention calls `compiled_attention`, which packs the per-kind options into one
fixed schema and calls `torch.ops.lavis3d.attention`. The compiler sees an opaque node: its fake implementation
gives the output's shape, dtype and device, and at run time its real implementation is the eager
kernels.attention (argument checks, then the fused Triton path or the reference path, as `explain` says).

Schema (every option of every kind, None where not given, so each kind's own checks still apply):

    attention(Tensor q, Tensor k, Tensor v, str kind, bool causal, float? scale, str backend,
              Tensor? rope_sin, Tensor? rope_cos, Tensor? slopes, Tensor? landmarks, float? bias,
              int? chunk_size, int? num_landmarks, int? newton_iters, int? block_size, str? feature_map) -> Tensor

Autograd: q, k, v and landmarks are differentiable (rope tables, slopes and scalars are not). The backward is a
second op, `lavis3d::attention_backward`, that reruns the eager forward under autograd and differentiates it,
so the fused kernels' own backward runs on CUDA: a compiled training step pays one extra attention forward.
Softmax on backend "auto" (SDPA in eager) stays SDPA under compile, so the compiler sees and fuses it.
"""

import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

TENSOR_OPTIONS = ("slopes", "landmarks")
INT_OPTIONS = ("chunk_size", "num_landmarks", "newton_iters", "block_size")
FLOAT_OPTIONS = ("bias",)
STR_OPTIONS = ("feature_map",)
OPTION_NAMES = ("rope", *TENSOR_OPTIONS, *FLOAT_OPTIONS, *INT_OPTIONS, *STR_OPTIONS)
# The options' slots in the schema, in order: rope travels as its two tables.
SLOTS = (
    *(("Tensor?", name) for name in ("rope_sin", "rope_cos", *TENSOR_OPTIONS)),
    *(("float?", name) for name in FLOAT_OPTIONS),
    *(("int?", name) for name in INT_OPTIONS),
    *(("str?", name) for name in STR_OPTIONS),
)
ARGUMENTS = "Tensor q, Tensor k, Tensor v, str kind, bool causal, float? scale, str backend, " + ", ".join(
    f"{kind} {name}" for kind, name in SLOTS
)

_library = torch.library.Library("lavis3d", "FRAGMENT")
_library.define(f"attention({ARGUMENTS}) -> Tensor")
_library.define(f"attention_backward(Tensor grad, {ARGUMENTS}) -> Tensor[]")
attention_op = torch.ops.lavis3d.attention.default
attention_backward_op = torch.ops.lavis3d.attention_backward.default


@torch.library.impl(_library, "attention", "CompositeExplicitAutograd")
def _attention(q: Tensor, k: Tensor, v: Tensor, kind: str, causal: bool, scale, backend: str, *slots) -> Tensor:
    """kernels.attention with its options spelled out (see the module docstring)."""
    from .api import attention

    return attention(q, k, v, kind, causal=causal, scale=scale, backend=backend, **_unpack(slots)).contiguous()


@torch.library.register_fake("lavis3d::attention", lib=_library)
def _attention_fake(q: Tensor, k: Tensor, v: Tensor, *args: Any) -> Tensor:
    return q.new_empty((*q.shape[:-1], v.shape[-1]))


@torch.library.impl(_library, "attention_backward", "CompositeExplicitAutograd")
def _attention_backward(grad: Tensor, q: Tensor, k: Tensor, v: Tensor, kind, causal, scale, backend, *slots):
    """[dq, dk, dv, dlandmarks] (dlandmarks is empty without landmarks): the eager forward, rerun and differentiated."""
    from .api import attention

    options = _unpack(slots)
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    landmarks = options.get("landmarks")
    if landmarks is not None:
        options["landmarks"] = landmarks = landmarks.detach().requires_grad_()
        leaves.append(landmarks)
    with _autograd_enabled():
        out = attention(*leaves[:3], kind, causal=causal, scale=scale, backend=backend, **options)
        grads = torch.autograd.grad(out, leaves, grad, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves, strict=True)]
    if landmarks is None:
        grads.append(q.new_empty(0))
    return [g.contiguous() for g in grads]


@torch.library.register_fake("lavis3d::attention_backward", lib=_library)
def _attention_backward_fake(grad: Tensor, q: Tensor, k: Tensor, v: Tensor, *args: Any) -> list[Tensor]:
    landmarks = args[4 + SLOTS.index(("Tensor?", "landmarks"))]
    grads = [torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in (q, k, v)]
    extra = landmarks if landmarks is not None else q.new_empty(0)
    return [*grads, torch.empty(extra.shape, dtype=extra.dtype, device=extra.device)]


@contextmanager
def _autograd_enabled() -> Iterator[None]:
    """Autograd inside a custom op's implementation, which torch runs below the autograd dispatch key (a private
    torch API: the TLS exclude set without the autograd keys, restored on exit)."""
    keys = torch._C.DispatchKey
    exclude = torch._C._dispatch_tls_local_exclude_set()
    for key in (keys.AutogradCPU, keys.AutogradOther, keys.AutogradNestedTensor):
        exclude = exclude.remove(key)
    with torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(), exclude), torch.enable_grad():
        yield


def _setup_context(ctx, inputs: tuple, output: Tensor) -> None:
    q, k, v, kind, causal, scale, backend, rope_sin, rope_cos, slopes, landmarks, *scalars = inputs
    ctx.save_for_backward(q, k, v, rope_sin, rope_cos, slopes, landmarks)
    ctx.args = (kind, causal, scale, backend)
    ctx.scalars = scalars


def _backward(ctx, grad: Tensor):
    q, k, v, rope_sin, rope_cos, slopes, landmarks = ctx.saved_tensors
    dq, dk, dv, dlandmarks = attention_backward_op(
        grad, q, k, v, *ctx.args, rope_sin, rope_cos, slopes, landmarks, *ctx.scalars
    )
    no_grad = (None,) * (4 + 3)  # kind, causal, scale, backend; rope_sin, rope_cos, slopes
    return dq, dk, dv, *no_grad, (dlandmarks if landmarks is not None else None), *(None,) * 6


torch.library.register_autograd("lavis3d::attention", _backward, setup_context=_setup_context, lib=_library)


def compiled_attention(
    q: Tensor, k: Tensor, v: Tensor, kind: str, *, causal: bool, scale: float | None, backend: str, **options: Any
) -> Tensor | None:
    """kernels.attention through the custom op; None when the options do not fit the schema (the caller then takes
    the eager path, whose checks name what is wrong)."""
    if kind == "softmax" and backend == "auto" and not options and isinstance(causal, bool):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    packed = pack_options(options, q.device)
    if packed is None or not isinstance(kind, str) or not isinstance(backend, str) or not isinstance(causal, bool):
        return None
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            return None
        scale = float(scale)
    return attention_op(q, k, v, kind, causal, scale, backend, *packed)


def pack_options(options: dict[str, Any], device: torch.device) -> tuple | None:
    """The options as the schema's positional values (rope_sin, rope_cos, slopes, landmarks, bias, chunk_size,
    num_landmarks, newton_iters, block_size, feature_map), or None if one does not fit its slot."""
    if set(options) - set(OPTION_NAMES):
        return None
    rope = options.get("rope")
    if rope is None:
        sin = cos = None
    elif isinstance(rope, (tuple, list)) and len(rope) == 2 and all(isinstance(t, Tensor) for t in rope):
        sin, cos = rope
    else:
        return None
    slopes = options.get("slopes")
    if isinstance(slopes, Sequence) and not isinstance(slopes, str):
        slopes = torch.tensor(slopes, dtype=torch.float64, device=device)
    tensors = [slopes, options.get("landmarks")]
    if any(t is not None and not isinstance(t, Tensor) for t in tensors):
        return None
    scalars = []
    for name in (*FLOAT_OPTIONS, *INT_OPTIONS, *STR_OPTIONS):
        value = options.get(name)
        if value is None:
            scalars.append(None)
        elif name in FLOAT_OPTIONS and isinstance(value, numbers.Real) and not isinstance(value, bool):
            scalars.append(float(value))
        elif name in INT_OPTIONS and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            scalars.append(int(value))
        elif name in STR_OPTIONS and isinstance(value, str):
            scalars.append(value)
        else:
            return None
    return (sin, cos, *tensors, *scalars)


def _unpack(slots: Sequence) -> dict[str, Any]:
    """The schema's option slots -> kernels.attention's keyword options (those given)."""
    given = dict(zip((name for _, name in SLOTS), slots, strict=True))
    rope = given.pop("rope_sin"), given.pop("rope_cos")
    options = {name: value for name, value in given.items() if value is not None}
    if any(table is not None for table in rope):
        options["rope"] = rope
    return options
