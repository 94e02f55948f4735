"""Every fused Triton kernel against the reference path: output and dq, dk, dv by relative RMS error.

Without a GPU the kernels run on the CPU through Triton's interpreter (tests/conftest.py), with
freshly allocated outputs NaN-filled, so an element a kernel leaves unwritten fails the test.
"""

import pytest
import torch

import kernels
from kernels.registry import KIND_TABLE

from .inputs import make_qkv, rope_angles
from .naive import rel_rms

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FUSED = tuple(kind for kind, spec in KIND_TABLE.items() if spec.triton)
CAUSAL = {kind for kind, spec in KIND_TABLE.items() if spec.causal}

# (B, H, Nq, Nk, D, Dv): every D in {16, 32, 64, 128}, tails that are not block multiples, Nq != Nk.
SHAPES = [
    (1, 2, 37, 37, 16, 16),
    (2, 1, 70, 70, 32, 24),
    (1, 1, 33, 33, 64, 64),
    (1, 1, 17, 17, 128, 96),
    (1, 1, 1, 1, 16, 16),
]
CROSS_SHAPES = [(1, 2, 29, 70, 32, 16), (2, 1, 70, 5, 16, 32)]


def compare(kind, shape, *, causal=False, dtype=torch.float32, tol=1e-3, **options):
    q, k, v = (t.to(DEVICE) for t in make_qkv(kind, *shape, dtype=dtype))
    outs = {}
    for backend in ("reference", "triton"):
        # The reference runs in float64: the truth both paths are judged against.
        ref_dtype = torch.float64 if backend == "reference" else dtype
        leaves = [t.detach().to(ref_dtype).requires_grad_() for t in (q, k, v)]
        out = kernels.attention(*leaves, kind, causal=causal, backend=backend, **options)
        grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).to(device=DEVICE, dtype=dtype)
        out.backward(grad.to(out.dtype))
        outs[backend] = [out.detach()] + [t.grad for t in leaves]
    for name, ref, got in zip(("out", "dq", "dk", "dv"), outs["reference"], outs["triton"], strict=True):
        assert got.dtype == dtype and got.shape == ref.shape, (got.dtype, got.shape, ref.shape)
        assert torch.isfinite(got).all(), f"{kind} {name}: non-finite values (unwritten or overflow)"
        # Relative RMS; the floor keeps it meaningful where the true gradient is zero (one key: dq = 0).
        err = (ref - got).double().pow(2).mean().sqrt().item() / max(ref.double().pow(2).mean().sqrt().item(), 1e-3)
        assert err < tol, f"{kind} {name}: relative RMS error {err:.2e} >= {tol}"


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", FUSED)
def test_fused_matches_reference(kind, shape):
    compare(kind, shape)


@pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
@pytest.mark.parametrize("kind", [k for k in FUSED if k in CAUSAL])
def test_fused_causal(kind, shape):
    compare(kind, shape, causal=True)


@pytest.mark.parametrize("shape", CROSS_SHAPES, ids=str)
@pytest.mark.parametrize("kind", [k for k in FUSED if k != "local"])
def test_fused_cross_attention(kind, shape):
    compare(kind, shape)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kind", FUSED)
def test_fused_low_precision(kind, dtype):
    """16-bit inputs feed the tensor cores in their own dtype; within that dtype's rounding of the float64 truth.
    Under the interpreter bf16 products are emulated exactly: operands rounded to bf16, multiplied in fp32."""
    for causal in (False, True) if kind in CAUSAL else (False,):
        compare(kind, (1, 2, 77, 77, 32, 32), causal=causal, dtype=dtype, tol=1e-2)


def test_fused_options():
    compare("sigmoid", (1, 2, 37, 37, 16, 16), bias=-1.5, scale=0.2)
    compare("sigmoid", (1, 2, 37, 37, 16, 16), causal=True, bias=0.5)
    for block_size in (1, 5, 16, 64):
        compare("local", (1, 2, 37, 37, 16, 16), block_size=block_size)
        compare("local", (1, 2, 37, 37, 16, 16), block_size=block_size, causal=True)


def test_non_contiguous_inputs():
    """Projections usually give [B, N, H, D] views transposed to [B, H, N, D]."""
    for kind in FUSED:
        base = torch.randn(2, 37, 3, 3, 16, dtype=torch.float32, device=DEVICE)
        q, k, v = (base[:, :, i].transpose(1, 2) for i in range(3))
        assert not q.is_contiguous()
        got = kernels.attention(q, k, v, kind, backend="triton")
        ref = kernels.attention(q.double(), k.double(), v.double(), kind, backend="reference")
        assert rel_rms(ref, got) < 1e-3, kind


@pytest.mark.parametrize("causal", [False, True])
def test_fused_lightning_many_blocks_and_slopes(causal):
    slopes = torch.tensor([0.0, 0.02, 0.7], device=DEVICE)
    compare("lightning", (1, 3, 200, 200, 16, 16), causal=causal, slopes=slopes)
    compare("lightning", (1, 3, 200, 200, 16, 16), causal=causal)
    if not causal:
        compare("lightning", (1, 3, 150, 70, 16, 8), slopes=slopes)


@pytest.mark.parametrize("kind", ["nala", "mala"])
@pytest.mark.parametrize("n,d", [(37, 16), (70, 32), (20, 64)])
def test_fused_rope(kind, n, d):
    _, (sin, cos) = rope_angles(n, d)
    compare(kind, (2, 2, n, n, d, 24), rope=(sin.float().to(DEVICE), cos.float().to(DEVICE)))
    per_head = (sin.float().expand(2, 2, n, d).to(DEVICE), cos.float().expand(2, 2, n, d).to(DEVICE))
    compare(kind, (2, 2, n, n, d, 24), rope=per_head)


def test_fused_mala_scale():
    compare("mala", (1, 2, 37, 50, 16, 16), scale=0.4)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("feature_map", ["elu1", "relu"])
def test_fused_norm_feature_maps(causal, feature_map):
    compare("norm", (1, 2, 100, 100, 32, 16), causal=causal, feature_map=feature_map)


@pytest.mark.parametrize("num_landmarks", [1, 7, 49, 100])
def test_fused_soft_landmark_counts(num_landmarks):
    compare("soft", (1, 2, 150, 120, 16, 24), num_landmarks=num_landmarks, newton_iters=8)


def test_fused_soft_explicit_landmarks_get_gradients():
    q, k, v = (t.float().to(DEVICE) for t in make_qkv("soft", 1, 2, 40, 50, 16, 8))
    grads = {}
    for backend in ("reference", "triton"):
        lm = (torch.randn(1, 2, 6, 16, generator=torch.Generator().manual_seed(5)) * 0.5).to(DEVICE).requires_grad_()
        kernels.attention(q, k, v, "soft", landmarks=lm, backend=backend).pow(2).sum().backward()
        grads[backend] = lm.grad
    assert rel_rms(grads["reference"], grads["triton"]) < 1e-3


# Shared memory per block of an A100 and of an RTX 3090/4090: the wrappers take smaller tiles or fewer pipeline
# stages there (tests/kernels/test_shared_memory.py checks that they fit); these run those tilings on any machine.
SMALLER_GPUS = {"a100": 166912, "rtx4090": 101376}


@pytest.mark.parametrize("gpu", SMALLER_GPUS)
@pytest.mark.parametrize("kind", FUSED)
def test_fused_tiles_of_smaller_gpus(kind, gpu, monkeypatch):
    monkeypatch.setenv("KERNELS_SHARED_MEMORY", str(SMALLER_GPUS[gpu]))
    causal = kind in CAUSAL
    compare(kind, (1, 1, 150, 150, 64, 64), causal=causal)
    # the linear kinds' fp32 states do not fit an RTX 4090 at D = Dv = 128 (next test)
    narrow_v = kind in ("nala", "mala", "norm") and gpu == "rtx4090"
    compare(kind, (1, 1, 100, 100, 128, 64 if narrow_v else 96), causal=causal)


@pytest.mark.parametrize("kind", ["nala", "mala", "norm"])
def test_linear_states_too_big_for_the_gpu_are_refused_by_name(kind, monkeypatch):
    monkeypatch.setenv("KERNELS_SHARED_MEMORY", str(SMALLER_GPUS["rtx4090"]))
    q, k, v = (torch.randn(1, 1, 20, 128, device=DEVICE) for _ in range(3))
    with pytest.raises(ValueError, match=r"D=128, Dv=128: .*shared memory.* the 101376 bytes this GPU gives"):
        kernels.attention(q, k, v, kind, backend="triton")
    # on such a GPU backend="auto" takes the PyTorch path instead (the plan of a CUDA tensor, made on any machine)
    monkeypatch.setattr(kernels.api, "_device_type", lambda t: "cuda")
    plan = kernels.explain(q, k, v, kind)
    assert plan.path == "reference" and "the 101376 bytes this GPU gives" in plan.reason, plan
    monkeypatch.undo()
    monkeypatch.setenv("KERNELS_SHARED_MEMORY", str(SMALLER_GPUS["a100"]))
    assert kernels.explain(q, k, v, kind, backend="triton").path == "triton"
    monkeypatch.setenv("KERNELS_SHARED_MEMORY", str(SMALLER_GPUS["rtx4090"]))
    if kind == "norm":  # causal norm runs the decayed scan, which fits
        compare(kind, (1, 1, 20, 20, 128, 128), causal=True)


def test_gpus_with_less_shared_memory_than_the_tiles_need_take_the_pytorch_path(monkeypatch):
    monkeypatch.setenv("KERNELS_SHARED_MEMORY", "65536")  # a T4 (sm_75)
    q, k, v = (torch.randn(1, 1, 20, 16, device=DEVICE) for _ in range(3))
    with pytest.raises(ValueError, match="65536 bytes of shared memory; the kernels' tiles need 101376"):
        kernels.attention(q, k, v, "sigmoid", backend="triton")
    monkeypatch.setattr(kernels.api, "_device_type", lambda t: "cuda")
    plan = kernels.explain(q, k, v, "nala")
    assert plan.path == "reference" and "65536 bytes" in plan.reason, plan


@pytest.mark.parametrize("m,iters", [(7, 2), (49, 3), (49, 20), (64, 3)])
def test_fused_newton_schulz_matches_autograd_through_the_iterations(m, iters):
    """SOFT's fused Newton–Schulz: X_iters and dL/dA, dL/dX0 against float64 autograd through the loop."""
    from kernels.ops.soft.newton_schulz import NewtonSchulz
    from kernels.ops.soft.reference import gaussian_kernel, newton_schulz_iterate, newton_schulz_start

    g = torch.Generator().manual_seed(m)
    lm = torch.randn(2, 3, m, 16, generator=g, dtype=torch.float64) * 0.6
    a = gaussian_kernel(lm, lm)
    x0 = newton_schulz_start(a)
    weight = torch.randn(2, 3, m, m, generator=g, dtype=torch.float64)
    results = []
    for fused in (False, True):
        a_leaf, x0_leaf = (t.detach().clone().to(DEVICE, torch.float32 if fused else torch.float64) for t in (a, x0))
        a_leaf.requires_grad_()
        x0_leaf.requires_grad_()
        x = (NewtonSchulz.apply if fused else newton_schulz_iterate)(a_leaf, x0_leaf, iters)
        (x * weight.to(x)).sum().backward()
        results.append([x.detach(), a_leaf.grad, x0_leaf.grad])
    (x_ref, da_ref, dx0_ref), (x, da, dx0) = results
    assert rel_rms(x_ref, x) < 1e-4 and rel_rms(da_ref, da) < 1e-4, (rel_rms(x_ref, x), rel_rms(da_ref, da))
    if iters <= 3:  # later, the quadratic convergence leaves X0 an influence below fp32's range (1e-70 at 20)
        assert rel_rms(dx0_ref, dx0) < 1e-4, rel_rms(dx0_ref, dx0)


@pytest.mark.parametrize(
    "kind, causal", [(kind, False) for kind in FUSED] + [(kind, True) for kind in FUSED if kind in CAUSAL]
)
def test_a_second_derivative_of_a_fused_kernel_raises_instead_of_being_zero(kind, causal):
    """The fused backward kernels are not differentiable themselves: a gradient penalty through them must fail
    loudly (the reference path gives the true second derivative), never silently contribute nothing."""
    q, k, v = (t.to(DEVICE).requires_grad_() for t in make_qkv(kind, 1, 2, 20, 20, 16, 16, dtype=torch.float32))
    reference = kernels.attention(q, k, v, kind, causal=causal, backend="reference")
    (grad_q,) = torch.autograd.grad(reference.square().sum(), q, create_graph=True)
    assert grad_q.requires_grad  # the reference path's second derivative exists
    out = kernels.attention(q, k, v, kind, causal=causal, backend="triton")
    (grad_q,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad_q.square().sum().backward()
