"""Memory: linear kinds never build an Nq×Nk tensor; chunked forms grow linearly; softmax auto is SDPA."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import kernels

from .inputs import make_qkv


class Recorder(TorchDispatchMode):
    """Records every aten op called and the largest tensor any op produced (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append(str(func))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def largest_intermediate(kind, nq, nk, causal=False, **options):
    q, k, v = make_qkv(kind, 1, 1, nq, nk, 8, 8, dtype=torch.float32, requires_grad=True)
    with Recorder() as rec:
        out = kernels.attention(q, k, v, kind, causal=causal, backend="reference", **options)
        out.sum().backward()
    return rec.largest


@pytest.mark.parametrize("kind", ["nala", "mala", "norm", "soft"])
def test_non_causal_linear_kinds_never_form_nq_by_nk(kind):
    nq, nk = 1024, 1536
    assert largest_intermediate(kind, nq, nk) < nq * nk / 16


@pytest.mark.parametrize("kind,causal", [("norm", True), ("lightning", True), ("lightning", False)])
def test_chunked_forms_grow_linearly(kind, causal):
    small = largest_intermediate(kind, 1024, 1024, causal=causal, chunk_size=32)
    large = largest_intermediate(kind, 4096, 4096, causal=causal, chunk_size=32)
    assert large < 1024 * 1024 / 4  # far below N² at N = 1024, let alone 4096
    assert large <= 4.5 * small  # 4× the tokens: about 4× the memory, not 16×


def test_softmax_auto_uses_sdpa():
    q, k, v = make_qkv("softmax", 1, 2, 64, 64, 16, 16, dtype=torch.float32)
    with Recorder() as rec:
        kernels.attention(q, k, v, "softmax")
    assert any("scaled_dot_product" in op for op in rec.ops), rec.ops
    assert not any(op.startswith("aten._softmax") for op in rec.ops)
