"""fp16 / bf16 inputs: fp32 accumulation, output in the input dtype, no overflow for large |q|, |k|."""

import pytest
import torch

import kernels

from .inputs import make_qkv
from .naive import rel_rms

FORMS = [(kind, False) for kind in kernels.KINDS] + [
    (kind, True) for kind in ("softmax", "sigmoid", "norm", "lightning", "local")
]
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
