"""Helpers shared by the Triton kernels' Python wrappers (imported only when a Triton path runs)."""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

LOG2E = 1.4426950408889634


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU through its interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def fp32_tiles(t: Tensor) -> bool:
    """Compute on fp32 tiles when the interpreter would mishandle bf16 (numpy has no bfloat16)."""
    return interpreting() and t.dtype == torch.bfloat16


def dot_mode(t: Tensor, *, bounded: bool = True) -> str:
    """How the kernels' matrix products run for inputs like `t` (the DOT constexpr of `mm`): fp16/bf16 inputs feed
    the tensor cores in their own dtype with fp32 accumulation; fp32 inputs stay exact (IEEE) unless torch allows
    TF32 for matmuls. Under the interpreter, whose bf16 products are wrong (numpy has no bfloat16), bf16 operands are
    rounded to bf16 and multiplied in fp32: the same numbers the tensor cores would multiply.

    bounded=False: the products' operands include sums over tokens (linear attention's states, their gradients,
    SOFT's pseudo-inverse products), which outgrow fp16's largest value, 65504, on long sequences. fp16 inputs
    then multiply in TF32: fp16's 10-bit mantissa with fp32's range, still on the tensor cores. bf16 has fp32's
    range and stays bf16."""
    if t.dtype == torch.float16:
        if bounded:
            return "fp16"
        return "tf32_rounded" if interpreting() else "tf32"
    if t.dtype == torch.bfloat16:
        return "bf16_rounded" if fp32_tiles(t) else "bf16"
    return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"


def state_dtype(t: Tensor) -> torch.dtype:
    """The dtype in which a kernel stores states read back by a later one: bf16 for bf16 inputs (they are cast to it
    for the next product anyway, as flash-linear-attention does), fp32 otherwise (fp16 cannot hold long sums)."""
    return t.dtype if t.dtype == torch.bfloat16 and not fp32_tiles(t) else torch.float32


def wide_dot_mode(t: Tensor) -> str:
    """`dot_mode` for products whose result cancels against another term, where bf16's 8-bit mantissa is not
    enough: TF32 (10 bits, still on the tensor cores) for 16-bit inputs."""
    if t.dtype == torch.bfloat16:
        return "tf32_rounded" if fp32_tiles(t) else "tf32"
    return dot_mode(t, bounded=False)


@triton.jit
def round_mantissa(x, DROP: tl.constexpr):
    """fp32 x rounded to nearest (ties to even) with its DROP lowest mantissa bits cleared, kept in fp32."""
    bits = x.to(tl.float32).to(tl.uint32, bitcast=True)
    keep: tl.constexpr = (0xFFFFFFFF >> DROP) << DROP
    bits = (bits + ((1 << (DROP - 1)) - 1) + ((bits >> DROP) & 1)) & keep
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def mm(a, b, DOT: tl.constexpr):
    """a @ b accumulated in fp32. DOT (from `dot_mode`): "bf16"/"fp16" cast both operands for the tensor cores,
    "tf32" or "ieee" multiply fp32 operands; "bf16_rounded"/"tf32_rounded" are the interpreter's stand-ins,
    exact products of operands rounded as the tensor cores would round them."""
    if DOT == "bf16":
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))
    elif DOT == "fp16":
        return tl.dot(a.to(tl.float16), b.to(tl.float16))
    elif DOT == "bf16_rounded":
        return tl.dot(round_mantissa(a, 16), round_mantissa(b, 16), input_precision="ieee")
    elif DOT == "tf32_rounded":
        return tl.dot(round_mantissa(a, 13), round_mantissa(b, 13), input_precision="ieee")
    elif DOT == "tf32":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="tf32")
    else:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")


@triton.jit
def load_tile(P, rows, cols, sr, sc, R, C):
    """The tile P[rows, cols] (P the matrix's start, sr and sc its row and column strides) in P's dtype, zero
    outside rows < R and cols < C. Callers that compute in fp32 cast it; 16-bit tiles stay 16-bit for `mm`."""
    return tl.load(
        P + rows[:, None] * sr + cols[None, :] * sc, mask=(rows[:, None] < R) & (cols[None, :] < C), other=0.0
    )


@triton.jit
def store_tile(P, rows, cols, sr, sc, R, C, value):
    """P[rows, cols] = value cast to P's element type, only where rows < R and cols < C (as `load_tile`)."""
    tl.store(
        P + rows[:, None] * sr + cols[None, :] * sc,
        value.to(P.dtype.element_ty),
        mask=(rows[:, None] < R) & (cols[None, :] < C),
    )


# The opt-in shared memory one block may take: 227 KB on an H100/H200 (sm_90), 163 KB on an A100 (sm_80),
# 99 KB on an RTX 3090/4090 (sm_86/89): the smallest the tiles are sized for
HOPPER_SHARED_MEMORY = 232448
AMPERE_SHARED_MEMORY = 166912
SMALLEST_SHARED_MEMORY = 101376


def shared_memory_limit(device: torch.device) -> int:
    """Bytes of shared memory one block may take on `device`: 227 KB on an H100, 163 KB on an A100, 99 KB on
    an RTX 3090/4090. The wrappers pick their tiles to fit it; a launch that does not fails with OutOfResources.
    KERNELS_SHARED_MEMORY lowers it, so that tests and scripts/kernel_shared_memory.py can plan the launches of
    a smaller GPU on any machine (the interpreter has no limit of its own and plans for an H100)."""
    limit = torch.cuda.get_device_properties(device).shared_memory_per_block_optin if device.type == "cuda" else None
    override = os.environ.get("KERNELS_SHARED_MEMORY")
    if override:
        return min(int(override), limit or int(override))
    return limit or HOPPER_SHARED_MEMORY


def block_dim(d: int) -> int:
    """Padded feature width for a tile: a power of two, at least 16 (tl.dot's smallest K)."""
    return max(16, triton.next_power_of_2(d))


def seq_block(n: int, preferred: int) -> int:
    """A power-of-two token block no larger than needed for n tokens, at least 16."""
    return max(16, min(preferred, triton.next_power_of_2(n)))


def strides(t: Tensor) -> tuple[int, int, int, int]:
    return t.stride(0), t.stride(1), t.stride(2), t.stride(3)


def new_empty(*shape: int, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """torch.empty; under tests (KERNELS_NAN_FILL=1) filled with NaN so an unwritten element fails."""
    out = torch.empty(*shape, device=like.device, dtype=dtype or like.dtype)
    if os.environ.get("KERNELS_NAN_FILL") == "1":
        out.fill_(float("nan"))
    return out


def reduction_splits(bh: int, tiles: int, device: torch.device) -> int:
    """Programs per head for a reduction over tokens: enough to fill the GPU twice over, never more
    than there are tiles (two under the interpreter, so the partial-sum path is always exercised)."""
    if interpreting() or device.type != "cuda":
        return min(2, tiles)
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, min(tiles, triton.cdiv(2 * sms, bh)))
