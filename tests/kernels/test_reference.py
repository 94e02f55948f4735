"""Every kind's reference path against the naive float64 weight-matrix implementation."""

import math

import pytest
import torch

import kernels
from kernels.ops.lightning.reference import alibi_slopes
from kernels.ops.soft.reference import gaussian_kernel, gaussian_kernel_matmul, newton_schulz_pinv
from kernels.registry import KIND_TABLE

from . import naive
from .inputs import make_qkv, rope_angles

# (B, H, Nq, Nk, D, Dv): N in {1, 7, 64, 197}, D in {16, 32, 64, 128}, Dv != D, B·H > 1, Nq != Nk.
SELF_SHAPES = [
    (1, 1, 1, 1, 16, 16),
    (2, 3, 7, 7, 32, 32),
    (1, 2, 64, 64, 64, 48),
    (2, 2, 197, 197, 128, 128),
    (1, 4, 197, 197, 16, 40),
]
CROSS_SHAPES = [
    (1, 4, 197, 64, 16, 32),
    (2, 2, 7, 64, 64, 16),
    (2, 1, 1, 7, 128, 24),
]
CAUSAL_KINDS = tuple(kind for kind, spec in KIND_TABLE.items() if spec.causal)
CROSS_KINDS = tuple(k for k in kernels.KINDS if k != "local")


def check(kind, shape, *, causal=False, tol=1e-10, naive_options=None, **options):
    q, k, v = make_qkv(kind, *shape)
    out = kernels.attention(q, k, v, kind, causal=causal, backend="reference", **options)
    ref = naive.NAIVE[kind](
        q, k, v, **({"causal": causal} if causal else {}), **(options if naive_options is None else naive_options)
    )
    assert out.shape == ref.shape and out.dtype == torch.float64
    assert naive.rel_rms(ref, out) < tol, (kind, shape, naive.rel_rms(ref, out))
    # fp32 inputs: fp32 arithmetic stays close to the float64 truth.
    out32 = kernels.attention(*(t.float() for t in (q, k, v)), kind, causal=causal, backend="reference", **options)
    assert out32.dtype == torch.float32
    assert naive.rel_rms(ref, out32) < 1e-4, (kind, shape, naive.rel_rms(ref, out32))


def test_kinds_tuple_is_the_contract():
    assert kernels.KINDS == ("softmax", "sigmoid", "nala", "mala", "norm", "lightning", "soft", "local")


@pytest.mark.parametrize("shape", SELF_SHAPES)
@pytest.mark.parametrize("kind", kernels.KINDS)
def test_self_attention(kind, shape):
    check(kind, shape)


@pytest.mark.parametrize("shape", SELF_SHAPES)
@pytest.mark.parametrize("kind", CAUSAL_KINDS)
def test_causal(kind, shape):
    check(kind, shape, causal=True)


@pytest.mark.parametrize("shape", CROSS_SHAPES)
@pytest.mark.parametrize("kind", CROSS_KINDS)
def test_cross_attention(kind, shape):
    check(kind, shape)


@pytest.mark.parametrize("kind", ["softmax", "sigmoid", "mala", "local"])
def test_explicit_scale(kind):
    check(kind, (2, 2, 64, 64, 32, 16), scale=0.3)


def test_softmax_auto_matches_naive():
    q, k, v = make_qkv("softmax", 2, 3, 64, 33, 32, 16)
    assert naive.rel_rms(naive.softmax(q, k, v), kernels.attention(q, k, v, "softmax")) < 1e-10


@pytest.mark.parametrize("bias", [0.0, -2.5, 1.0])
def test_sigmoid_bias(bias):
    check("sigmoid", (1, 2, 7, 64, 16, 16), bias=bias)
    check("sigmoid", (1, 2, 64, 64, 16, 16), causal=True, bias=bias)


@pytest.mark.parametrize("kind", ["nala", "mala"])
@pytest.mark.parametrize("n,d", [(7, 16), (64, 32), (197, 64)])
def test_rope_numerator_only(kind, n, d):
    theta, (sin, cos) = rope_angles(n, d)
    check(kind, (2, 2, n, n, d, 24), rope=(sin, cos), naive_options={"theta": theta})
    # RoPE really changes the result (it is applied, and in the numerator only).
    q, k, v = make_qkv(kind, 2, 2, n, n, d, 24)
    plain = kernels.attention(q, k, v, kind)
    rotated = kernels.attention(q, k, v, kind, rope=(sin, cos))
    assert naive.rel_rms(plain, rotated) > 1e-3
    # With zero angles RoPE is the identity.
    zero = (torch.zeros(n, d, dtype=torch.float64), torch.ones(n, d, dtype=torch.float64))
    assert naive.rel_rms(plain, kernels.attention(q, k, v, kind, rope=zero)) < 1e-12


def test_rope_broadcasts_per_head():
    theta, (sin, cos) = rope_angles(7, 16)
    q, k, v = make_qkv("mala", 2, 3, 7, 7, 16, 8)
    shared = kernels.attention(q, k, v, "mala", rope=(sin, cos))
    per_head = kernels.attention(q, k, v, "mala", rope=(sin.expand(2, 3, 7, 16), cos.expand(2, 3, 7, 16)))
    assert torch.equal(shared, per_head)


@pytest.mark.parametrize("feature_map", ["elu1", "relu"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 5, 64, 500])
def test_norm_options(feature_map, causal, chunk_size):
    check(
        "norm",
        (2, 2, 197, 197, 16, 24),
        causal=causal,
        feature_map=feature_map,
        chunk_size=chunk_size,
        naive_options={"feature_map": feature_map},
    )


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 16, 64, 300])
def test_lightning_chunk_sizes(causal, chunk_size):
    check("lightning", (1, 4, 197, 197, 32, 16), causal=causal, chunk_size=chunk_size, naive_options={})


def test_lightning_custom_slopes():
    slopes = torch.tensor([0.0, 0.05, 0.9], dtype=torch.float64)
    check("lightning", (2, 3, 64, 64, 16, 16), slopes=slopes)
    check("lightning", (2, 3, 64, 64, 16, 16), causal=True, slopes=slopes)


def test_lightning_strong_decay_stays_finite():
    """Large slopes make every cross-chunk weight underflow to 0; nothing may overflow to inf/nan."""
    q, k, v = make_qkv("lightning", 1, 2, 300, 300, 16, 16)
    slopes = torch.tensor([50.0, 200.0], dtype=torch.float64)
    for causal in (False, True):
        out = kernels.attention(q, k, v, "lightning", causal=causal, slopes=slopes, chunk_size=128)
        ref = naive.lightning(q, k, v, causal=causal, slopes=slopes)
        assert torch.isfinite(out).all() and naive.rel_rms(ref, out) < 1e-10


@pytest.mark.parametrize(
    "heads,expected",
    [
        (1, [2**-8]),
        (4, [2**-2, 2**-4, 2**-6, 2**-8]),
        (6, [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]),  # ALiBi: 4 from H=4, then every other of H=8
        (12, [2**-1, 2**-2, 2**-3, 2**-4, 2**-5, 2**-6, 2**-7, 2**-8, 2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]),
    ],
)
def test_alibi_slopes_hand_worked(heads, expected):
    assert alibi_slopes(heads) == pytest.approx(expected, rel=1e-12)


def test_lightning_default_slopes_non_power_of_two_heads():
    q, k, v = make_qkv("lightning", 1, 6, 64, 64, 16, 16)
    slopes = torch.tensor([2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3], dtype=torch.float64)
    out = kernels.attention(q, k, v, "lightning", causal=True)
    assert naive.rel_rms(naive.lightning(q, k, v, causal=True, slopes=slopes), out) < 1e-10


@pytest.mark.parametrize("num_landmarks", [1, 5, 49, 300])
@pytest.mark.parametrize("newton_iters", [0, 3, 20])
def test_soft_options(num_landmarks, newton_iters):
    check("soft", (1, 2, 197, 197, 32, 16), num_landmarks=num_landmarks, newton_iters=newton_iters)


def test_soft_explicit_landmarks():
    g = torch.Generator().manual_seed(3)
    landmarks = torch.randn(2, 2, 9, 32, generator=g, dtype=torch.float64) * 32**-0.25
    check("soft", (2, 2, 64, 64, 32, 16), landmarks=landmarks)
    shared = landmarks[:1, :1]
    check("soft", (2, 2, 64, 100, 32, 16), landmarks=shared)


@pytest.mark.parametrize("offset", [0.0, 5.0, 50.0])
def test_soft_gaussian_kernel_exact_far_from_the_origin(offset):
    """Distances do not change when every feature is shifted; in fp32 their computation must not either (the
    ‖a‖²+‖b‖²−2a·b expansion on raw features is off by 1e-5 at an offset of 5 and by 1e-3 at 50)."""
    g = torch.Generator().manual_seed(5)
    a = (torch.randn(2, 300, 32, generator=g, dtype=torch.float64) * 0.6 + offset).float()
    b = a[:, :294].reshape(2, 49, 6, 32).mean(2)
    truth = naive.gaussian(a.double(), b.double())  # float64 from the same fp32 inputs
    assert truth.min() < 1e-3 and truth.max() > 0.01  # far and near pairs (and, below, G(b, b)'s diagonal of 1)
    for kernel in (gaussian_kernel, gaussian_kernel_matmul):
        for x, y, ref in ((a, b, truth), (b, b, naive.gaussian(b.double(), b.double()))):
            assert (kernel(x, y).double() - ref).abs().max() < 1e-6, (kernel.__name__, offset)


def test_newton_schulz_converges_to_pinv():
    """Against torch.linalg.pinv on well-conditioned Gaussian kernel matrices."""
    points = torch.randn(3, 16, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gram = torch.exp(-0.5 * torch.cdist(points, points) ** 2)
    inverse = newton_schulz_pinv(gram, 30)
    assert torch.allclose(inverse, torch.linalg.pinv(gram), atol=1e-8)


def test_soft_is_exact_attention_when_every_key_is_a_landmark():
    """With m = Nk landmarks equal to the keys, A_k = Bm, so O = A_q·pinv(Bm)·Bm·V = G(Q,K)·V."""
    q, k, v = make_qkv("soft", 1, 2, 7, 12, 16, 8)
    out = kernels.attention(q, k, v, "soft", landmarks=k, newton_iters=60)
    assert naive.rel_rms(naive.gaussian(q, k) @ v, out) < 1e-6


@pytest.mark.parametrize("block_size", [1, 5, 64, 300])
@pytest.mark.parametrize("causal", [False, True])
def test_local_block_sizes(block_size, causal):
    check("local", (2, 2, 197, 197, 16, 24), causal=causal, block_size=block_size)


def test_local_block_covering_everything_is_softmax():
    q, k, v = make_qkv("local", 1, 2, 50, 50, 16, 16)
    for causal in (False, True):
        out = kernels.attention(q, k, v, "local", causal=causal, block_size=50)
        assert naive.rel_rms(naive.softmax(q, k, v, causal=causal), out) < 1e-12


def test_mala_weights_sum_to_one():
    """MALA's implied weights sum to 1 per query: with v = 1 everywhere the output is 1 (up to eps)."""
    q, k, _ = make_qkv("mala", 2, 2, 30, 40, 16, 4)
    out = kernels.attention(q, k, torch.ones(2, 2, 40, 3, dtype=torch.float64), "mala")
    assert torch.allclose(out, torch.ones_like(out), atol=1e-5)


def test_sigmoid_default_bias_is_minus_log_nk():
    q, k, v = make_qkv("sigmoid", 1, 1, 5, 37, 16, 8)
    a = kernels.attention(q, k, v, "sigmoid")
    b = kernels.attention(q, k, v, "sigmoid", bias=-math.log(37))
    assert torch.equal(a, b)


@pytest.mark.parametrize("n,m", [(1, 49), (5, 49), (49, 49), (50, 49), (100, 7), (1000, 49), (37, 1), (3136, 49)])
def test_soft_block_means_are_the_segment_means(n, m):
    """The fused path's landmarks (two reductions) equal the reference's tensor_split segment means."""
    from kernels.ops.soft.reference import segment_means
    from kernels.ops.soft.triton import block_means

    k = torch.randn(2, 3, n, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    torch.testing.assert_close(block_means(k, m), segment_means(k, m), rtol=0, atol=1e-12)
