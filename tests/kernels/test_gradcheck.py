"""torch.autograd.gradcheck in float64 for every kind, causal form and option that changes the math."""

import pytest
import torch

import kernels

from .inputs import make_qkv, rope_angles

CASES = [
    ("softmax", False, {}),
    ("softmax", True, {}),
    ("sigmoid", False, {}),
    ("sigmoid", True, {"bias": -1.0}),
    ("nala", False, {}),
    ("nala", False, {"rope": True}),
    ("mala", False, {}),
    ("mala", False, {"rope": True}),
    ("norm", False, {}),
    ("norm", False, {"feature_map": "relu"}),
    ("norm", True, {"chunk_size": 2}),
    ("lightning", False, {"chunk_size": 2}),
    ("lightning", True, {"chunk_size": 2}),
    ("soft", False, {"num_landmarks": 3, "newton_iters": 6}),
    ("local", False, {"block_size": 2}),
    ("local", True, {"block_size": 2}),
]


@pytest.mark.parametrize("kind,causal,options", CASES, ids=lambda c: str(c))
def test_gradcheck(kind, causal, options):
    n = 5
    nk = n if causal or kind == "local" or "rope" in options else 6  # cross-attention where allowed
    q, k, v = make_qkv(kind, 1, 2, n, nk, 4, 3, requires_grad=True)
    if options.get("rope"):
        options = {**options, "rope": rope_angles(n, 4)[1]}

    def fn(q, k, v):
        return kernels.attention(q, k, v, kind, causal=causal, backend="reference", **options)

    assert torch.autograd.gradcheck(fn, (q, k, v), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_soft_landmarks():
    q, k, v = make_qkv("soft", 1, 2, 5, 6, 4, 3, requires_grad=True)
    landmarks = (torch.randn(1, 2, 3, 4, dtype=torch.float64) * 0.5).requires_grad_()

    def fn(q, k, v, landmarks):
        return kernels.attention(q, k, v, "soft", landmarks=landmarks, newton_iters=6)

    assert torch.autograd.gradcheck(fn, (q, k, v, landmarks), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_lightning_slopes():
    q, k, v = make_qkv("lightning", 1, 2, 5, 5, 4, 3, requires_grad=True)
    slopes = torch.tensor([0.3, 1.1], dtype=torch.float64, requires_grad=True)

    def fn(q, k, v, slopes):
        return kernels.attention(q, k, v, "lightning", causal=True, slopes=slopes, chunk_size=2)

    assert torch.autograd.gradcheck(fn, (q, k, v, slopes), eps=1e-6, atol=1e-6, rtol=1e-4)
