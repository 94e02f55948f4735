"""Bad arguments raise ValueError or TypeError naming the argument, what was given and what is expected."""

import pytest
import torch

import kernels


def qkv(b=1, h=2, nq=8, nk=8, d=16, dv=16, dtype=torch.float32):
    return (
        torch.randn(b, h, nq, d, dtype=dtype),
        torch.randn(b, h, nk, d, dtype=dtype),
        torch.randn(b, h, nk, dv, dtype=dtype),
    )


def raises(exc, *patterns, **call):
    args = call.pop("args")
    with pytest.raises(exc) as info:
        kernels.attention(*args, **call)
    message = str(info.value)
    for pattern in patterns:
        assert pattern in message, f"{pattern!r} not in {message!r}"


def test_unknown_kind():
    raises(ValueError, "kind", "'flash'", "softmax", args=(*qkv(), "flash"))


def test_unknown_backend():
    raises(ValueError, "backend", "'cuda'", "reference", args=(*qkv(), "softmax"), backend="cuda")


@pytest.mark.parametrize("which", [0, 1, 2])
def test_wrong_rank(which):
    tensors = list(qkv())
    tensors[which] = tensors[which][0]
    name = "qkv"[which]
    raises(ValueError, f"{name}:", "4-D", str(tuple(tensors[which].shape)), args=(*tensors, "softmax"))


def test_not_a_tensor():
    q, k, v = qkv()
    raises(TypeError, "k:", "torch.Tensor", "list", args=(q, k.tolist(), v, "nala"))


def test_mismatched_batch():
    q, k, v = qkv()
    raises(ValueError, "k:", "batch size 1", "2", args=(q, torch.cat([k, k]), torch.cat([v, v]), "softmax"))


def test_mismatched_heads():
    q, k, v = qkv()
    raises(ValueError, "v:", "2 heads", "got 3", args=(q, k, torch.randn(1, 3, 8, 16), "mala"))


def test_mismatched_head_dim():
    q, _, v = qkv()
    raises(ValueError, "k:", "head dim 16", "got 8", args=(q, torch.randn(1, 2, 8, 8), v, "norm"))


def test_mismatched_key_value_tokens():
    q, k, _ = qkv()
    raises(ValueError, "v:", "8 tokens", "got 5", args=(q, k, torch.randn(1, 2, 5, 16), "softmax"))


def test_no_keys_for_some_queries():
    q, k, v = qkv(nk=0)
    raises(ValueError, "k:", ">= 1 key", "8 queries", args=(q, k, v, "softmax"))


def test_a_zero_head_dim():
    q, k, v = qkv()
    raises(ValueError, "q:", "head dim >= 1", args=(q[..., :0], k[..., :0], v, "softmax"))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_integer_dtypes(dtype):
    q, k, v = qkv()
    raises(TypeError, "q:", "floating-point", str(dtype), args=(q.to(dtype), k, v, "softmax"))


def test_mixed_dtypes():
    q, k, v = qkv()
    raises(TypeError, "v:", "float32", "float64", args=(q, k, v.double(), "lightning"))


def test_different_devices():
    q, k, v = qkv()
    raises(ValueError, "k:", "cpu", "meta", args=(q, k.to("meta"), v, "softmax"))


@pytest.mark.parametrize(
    "kind,option,value",
    [
        ("softmax", "bias", 0.0),
        ("nala", "chunk_size", 8),
        ("lightning", "rope", None),
        ("local", "num_landmarks", 4),
        ("soft", "block_size", 4),
        ("norm", "slopes", None),
    ],
)
def test_option_the_kind_does_not_take(kind, option, value):
    raises(TypeError, option, repr(kind), "takes", args=(*qkv(), kind), **{option: value})


@pytest.mark.parametrize("kind", ["nala", "norm", "lightning", "soft"])
def test_scale_on_a_kind_without_scale(kind):
    raises(TypeError, "scale", repr(kind), args=(*qkv(), kind), scale=0.5)


@pytest.mark.parametrize(
    "scale,exc", [(0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError), ("0.1", TypeError)]
)
def test_bad_scale(scale, exc):
    raises(exc, "scale", args=(*qkv(), "softmax"), scale=scale)


@pytest.mark.parametrize("kind", ["nala", "mala", "soft"])
def test_causal_on_a_kind_without_causal_form(kind):
    raises(ValueError, "causal", repr(kind), "lightning", args=(*qkv(), kind), causal=True)


@pytest.mark.parametrize("kind", ["softmax", "sigmoid", "norm", "lightning", "local"])
def test_causal_with_different_lengths(kind):
    raises(ValueError, "causal", "Nq=8", "Nk=5", args=(*qkv(nk=5), kind), causal=True)


def test_local_cross_attention():
    raises(ValueError, "'local'", "Nq=8", "Nk=5", args=(*qkv(nk=5), "local"))


def test_causal_not_bool():
    raises(TypeError, "causal", "'yes'", args=(*qkv(), "softmax"), causal="yes")


@pytest.mark.parametrize(
    "kind,options,exc,pattern",
    [
        ("norm", {"chunk_size": 0}, ValueError, "chunk_size"),
        ("norm", {"chunk_size": 2.5}, TypeError, "chunk_size"),
        ("norm", {"feature_map": "gelu"}, ValueError, "feature_map"),
        ("lightning", {"slopes": torch.ones(3)}, ValueError, "slopes"),
        ("lightning", {"slopes": torch.tensor([0.5, -0.1])}, ValueError, "slopes"),
        ("lightning", {"slopes": torch.ones(2, dtype=torch.int64)}, TypeError, "slopes"),
        ("sigmoid", {"bias": "small"}, TypeError, "bias"),
        ("sigmoid", {"bias": float("inf")}, ValueError, "bias"),
        ("soft", {"num_landmarks": 0}, ValueError, "num_landmarks"),
        ("soft", {"newton_iters": -1}, ValueError, "newton_iters"),
        ("soft", {"landmarks": torch.randn(1, 2, 4, 8)}, ValueError, "landmarks"),
        ("soft", {"landmarks": torch.randn(1, 2, 4, 16), "num_landmarks": 4}, ValueError, "num_landmarks"),
        ("local", {"block_size": True}, TypeError, "block_size"),
        ("nala", {"rope": torch.randn(8, 16)}, TypeError, "rope"),
        ("nala", {"rope": (torch.randn(8, 16), torch.randn(7, 16))}, ValueError, "rope cos"),
        (
            "mala",
            {"rope": (torch.randn(8, 16), torch.randn(8, 16, dtype=torch.float64).to(torch.int32))},
            TypeError,
            "rope[1]",
        ),
    ],
)
def test_bad_option_values(kind, options, exc, pattern):
    raises(exc, pattern, args=(*qkv(), kind), **options)


def test_rope_needs_equal_lengths_and_even_dim():
    raises(ValueError, "rope", "Nq=8", args=(*qkv(nk=5), "nala"), rope=(torch.zeros(8, 16), torch.ones(8, 16)))
    raises(ValueError, "rope", "even", args=(*qkv(d=5), "mala"), rope=(torch.zeros(8, 5), torch.ones(8, 5)))


def test_triton_backend_says_why_it_cannot_run():
    q, k, v = qkv(dtype=torch.float64)
    raises(ValueError, "backend", "triton", "float64", args=(q, k, v, "softmax"), backend="triton")
    q, k, v = qkv(d=160)
    raises(ValueError, "backend", "D=160", args=(q, k, v, "sigmoid"), backend="triton")
    slopes = torch.tensor([0.1, 0.2], requires_grad=True)
    raises(ValueError, "slopes", "grad", args=(*qkv(), "lightning"), backend="triton", slopes=slopes)
