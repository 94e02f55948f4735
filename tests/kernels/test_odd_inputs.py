"""Inputs a PyTorch user passes in practice: q, k and v as strided views of one fused projection, and empty
batches, heads or query sets (SDPA returns the empty result; so do we, on every backend, with gradients)."""

import pytest
import torch

import kernels
from kernels.registry import KIND_TABLE

from .naive import rel_rms

BACKENDS = [(kind, "reference") for kind in KIND_TABLE] + [(k, "triton") for k, s in KIND_TABLE.items() if s.triton]


@pytest.mark.parametrize("kind, backend", BACKENDS)
def test_views_of_a_fused_qkv_projection_match_contiguous_float64(kind, backend):
    torch.manual_seed(0)
    b, n, h, d = 2, 24, 2, 16
    qkv = torch.randn(b, n, 3, h, d).permute(2, 0, 3, 1, 4)  # what timm's Attention does: non-contiguous views
    q, k, v = qkv.unbind(0)
    assert not q.is_contiguous()
    truth = kernels.attention(*(t.contiguous().double() for t in (q, k, v)), kind, backend="reference")
    out = kernels.attention(q, k, v, kind, backend=backend)
    assert rel_rms(out.double(), truth) < 1e-5


@pytest.mark.parametrize("kind, backend", BACKENDS)
@pytest.mark.parametrize("shape", [(0, 2, 8, 8), (2, 0, 8, 8), (2, 2, 0, 0)], ids=["no-batch", "no-heads", "no-tokens"])
def test_an_empty_batch_head_or_sequence_gives_the_empty_result_with_gradients(kind, backend, shape):
    b, h, nq, nk = shape
    if nq != nk and not KIND_TABLE[kind].cross:
        pytest.skip("self-attention kind")
    q = torch.randn(b, h, nq, 16, requires_grad=True)
    k = torch.randn(b, h, nk, 16, requires_grad=True)
    v = torch.randn(b, h, nk, 12, requires_grad=True)
    out = kernels.attention(q, k, v, kind, backend=backend)
    expected = torch.nn.functional.scaled_dot_product_attention(q.detach(), k.detach(), v.detach())
    assert out.shape == expected.shape == (b, h, nq, 12) and out.dtype == q.dtype
    out.sum().backward()
    for t in (q, k, v):
        assert t.grad is not None and t.grad.shape == t.shape and not t.grad.any()


def test_queries_without_keys_stay_an_error():
    q, k = torch.randn(1, 2, 3, 16), torch.randn(1, 2, 0, 16)
    with pytest.raises(ValueError, match="key"):
        kernels.attention(q, k, k, "softmax", backend="reference")
