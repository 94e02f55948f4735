"""fp16 / bf16 inputs: fp32 accumulation, output in the input dtype, no overflow for large |q|, |k|."""

import pytest
import torch
import triton
import triton.language as tl

import kernels
from kernels.ops.common.triton_utils import dot_mode, mm
from kernels.registry import KIND_TABLE

from .inputs import make_qkv
from .naive import rel_rms

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

FORMS = [(kind, causal) for kind, spec in KIND_TABLE.items() for causal in (False, True)[: 1 + spec.causal]]
LOW = [torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("kind,causal", FORMS)
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_low_precision_matches_fp32(kind, causal, dtype, backend):
    q, k, v = make_qkv(kind, 2, 3, 197, 197, 64, 32, dtype=dtype)
    out = kernels.attention(q, k, v, kind, causal=causal, backend=backend)
    assert out.dtype == dtype
    # Same rounded inputs in fp32: only accumulation and the final rounding may differ.
    ref = kernels.attention(q.float(), k.float(), v.float(), kind, causal=causal, backend="reference")
    assert rel_rms(ref, out) < 1e-2, rel_rms(ref, out)


@pytest.mark.parametrize("dtype", LOW + [torch.float32], ids=str)
@pytest.mark.parametrize("kind,causal", FORMS)
def test_large_inputs_stay_finite(kind, causal, dtype):
    """|q|, |k| up to 30: no NaN/Inf wherever the fp32 result is finite and fits the dtype."""
    g = torch.Generator().manual_seed(0)
    q, k = ((torch.rand(1, 2, 128, 64, generator=g) * 60 - 30) for _ in range(2))
    v = torch.randn(1, 2, 128, 32, generator=g)
    q, k, v = (t.to(dtype) for t in (q, k, v))
    ref = kernels.attention(q.float(), k.float(), v.float(), kind, causal=causal, backend="reference")
    representable = torch.isfinite(ref) & (ref.abs() < torch.finfo(dtype).max)
    assert representable.float().mean() > 0.5  # the check below is not vacuous
    for backend in ("auto", "reference"):
        out = kernels.attention(q, k, v, kind, causal=causal, backend=backend)
        assert torch.isfinite(out[representable]).all(), (kind, backend)


def test_products_run_in_the_inputs_precision():
    """16-bit inputs feed the tensor cores in their dtype; fp32 stays IEEE unless torch allows TF32."""

    def mode(dtype):
        return dot_mode(torch.zeros(1, dtype=dtype))

    assert mode(torch.float16) == "fp16"
    # sums over tokens outgrow fp16's range: TF32 keeps its mantissa with fp32's range
    assert dot_mode(torch.zeros(1, dtype=torch.float16), bounded=False) == (
        "tf32" if torch.cuda.is_available() else "tf32_rounded"
    )
    # the interpreter's exact stand-in (next test) where the products run on the CPU
    assert mode(torch.bfloat16) == ("bf16" if torch.cuda.is_available() else "bf16_rounded")
    allowed = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        assert mode(torch.float32) == "ieee"
        torch.backends.cuda.matmul.allow_tf32 = True
        assert mode(torch.float32) == "tf32"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allowed


@triton.jit
def _product(A, B, OUT, DOT: tl.constexpr):
    i = tl.arange(0, 16)
    tile = i[:, None] * 16 + i[None, :]
    tl.store(OUT + tile, mm(tl.load(A + tile), tl.load(B + tile), DOT))


@pytest.mark.parametrize("mode,dtype_bits", [("bf16_rounded", 8), ("tf32_rounded", 11)])
def test_interpreted_products_round_their_operands_like_the_tensor_cores(mode, dtype_bits):
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(16, 16, generator=g) for _ in range(2))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = torch.empty(16, 16, device=device)
    _product[(1,)](a.to(device), b.to(device), out, DOT=mode)
    out = out.cpu()

    def rounded(x):  # round to nearest, ties to even, keeping dtype_bits of significand (torch's own for bf16)
        if mode == "bf16_rounded":
            return x.bfloat16().float()
        m, e = torch.frexp(x.double())
        scale = 2.0**dtype_bits
        return torch.ldexp(torch.round(m * scale) / scale, e).float()

    expected = rounded(a).double() @ rounded(b).double()
    assert torch.allclose(out.double(), expected, rtol=1e-6, atol=1e-5)
    assert not torch.allclose(out.double(), a.double() @ b.double(), rtol=1e-4, atol=1e-4)  # it did round


@pytest.mark.parametrize("kind,causal", [("norm", False), ("norm", True), ("mala", False), ("nala", False)])
def test_fp16_states_beyond_fp16_range_stay_finite(kind, causal):
    """Linear attention's states are sums over tokens: here up to ~1e6, far past fp16's 65504, while the
    (normalised) output fits. Cast to fp16 for a product they would be inf; the kernels keep them in fp32 and
    multiply in TF32."""
    g = torch.Generator().manual_seed(3)
    q, k = (torch.rand(1, 2, 300, 16, generator=g) for _ in range(2))
    v = torch.randn(1, 2, 300, 16, generator=g) * 100 + 3000  # Σ φ(k) v over 300 keys: about 1e6
    q, k, v = (t.to(DEVICE, torch.float16) for t in (q, k, v))
    ref = kernels.attention(q.double(), k.double(), v.double(), kind, causal=causal, backend="reference")
    out = kernels.attention(q, k, v, kind, causal=causal, backend="triton")
    assert torch.isfinite(out).all() and rel_rms(ref, out) < 1e-2, rel_rms(ref, out)
