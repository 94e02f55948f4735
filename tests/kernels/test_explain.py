"""kernels.explain reports the path attention takes; auto picks Triton only where it can run."""

import pytest
import torch

import kernels
from kernels.registry import KIND_TABLE


def qkv(dtype=torch.float32, device="cpu", d=16):
    return tuple(torch.randn(1, 2, 8, d, dtype=dtype, device=device) for _ in range(3))


def test_reference_when_requested():
    plan = kernels.explain(*qkv(), "nala", backend="reference")
    assert plan.path == "reference" and "requested" in plan.reason


def test_softmax_auto_is_sdpa():
    assert kernels.explain(*qkv(), "softmax").path == "sdpa"


def test_sdpa_reason_names_what_runs_on_the_tensors_device(monkeypatch):
    """On the CPU the reason does not promise FlashAttention or cuDNN, which exist only on the GPU."""
    import kernels.api as api

    on_cpu = kernels.explain(*qkv(), "softmax").reason
    assert "CPU" in on_cpu and "Flash" not in on_cpu and "cuDNN" not in on_cpu
    monkeypatch.setattr(api, "_device_type", lambda t: "cuda")
    assert "cuDNN" in kernels.explain(*qkv(), "softmax").reason


@pytest.mark.parametrize("kind", [k for k in kernels.KINDS if k != "softmax"])
def test_auto_on_cpu_is_reference(kind):
    plan = kernels.explain(*qkv(), kind)
    assert plan.path == "reference" and "cpu" in plan.reason


@pytest.mark.parametrize("kind", [k for k, spec in KIND_TABLE.items() if spec.triton])
def test_triton_when_requested_and_possible(kind):
    assert kernels.explain(*qkv(), kind, backend="triton").path == "triton"
    assert "float64" in str(
        pytest.raises(ValueError, kernels.explain, *qkv(torch.float64), kind, backend="triton").value
    )


def test_auto_on_cuda_uses_triton_where_supported(monkeypatch):
    """The plan depends only on device type, dtype, shapes and options: pretend the tensors are on CUDA."""
    import kernels.api

    monkeypatch.setattr(kernels.api, "_device_type", lambda t: "cuda")
    for kind, spec in KIND_TABLE.items():
        expected = "sdpa" if kind == "softmax" else ("triton" if spec.triton else "reference")
        assert kernels.explain(*qkv(), kind).path == expected
        wide = kernels.explain(*qkv(d=256), kind)
        if kind == "softmax":
            assert wide.path == "sdpa"
        else:
            assert wide.path == "reference" and ("256" in wide.reason or not spec.triton), wide
        assert kernels.explain(*qkv(torch.float64), kind).path in ("sdpa", "reference")


def test_plan_prints_path_and_reason():
    assert str(kernels.explain(*qkv(), "mala", backend="reference")).startswith("reference: ")
