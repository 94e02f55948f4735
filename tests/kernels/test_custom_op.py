"""kernels.attention as the torch.library custom op lavis3d::attention: schema, fake and autograd registration
(torch.library.opcheck), and torch.compile(fullgraph=True) giving eager's outputs and gradients."""

import pytest
import torch

import kernels
from kernels.custom_op import attention_op, pack_options

from .inputs import make_qkv, rope_angles


@pytest.fixture(autouse=True)
def fresh_compiler():
    torch.compiler.reset()  # every test compiles a new function: keep dynamo's recompile limit out of the way
    yield
    torch.compiler.reset()


# kind -> options that exercise each tensor and scalar slot of the schema
CASES = {
    "softmax": {},
    "sigmoid": {"bias": -1.5},
    "nala": {"rope": True},
    "mala": {"rope": True},
    "norm": {"feature_map": "relu", "chunk_size": 8},
    "lightning": {"slopes": [0.5, 0.1]},
    "soft": {"landmarks": True, "newton_iters": 12},
    "local": {"block_size": 5},
}


def inputs(kind, n=13, requires_grad=True):
    q, k, v = make_qkv(kind, 2, 2, n, n, 8, 8, requires_grad=requires_grad)
    options = dict(CASES[kind])
    if options.get("rope"):
        options["rope"] = rope_angles(n, 8)[1]
    if options.get("landmarks"):
        options["landmarks"] = torch.randn(2, 2, 3, 8, dtype=torch.float64, requires_grad=requires_grad)
    if "slopes" in options:
        options["slopes"] = torch.tensor(options["slopes"], dtype=torch.float64)
    return q, k, v, options


@pytest.mark.parametrize("kind", kernels.KINDS)
def test_opcheck(kind):
    """torch's own checks of a custom op: schema, fake (meta) kernel, autograd registration, AOT dispatch."""
    q, k, v, options = inputs(kind)
    packed = pack_options(options, q.device)
    assert packed is not None
    torch.library.opcheck(attention_op, (q, k, v, kind, False, None, "auto", *packed))


@pytest.mark.parametrize("kind", kernels.KINDS)
def test_compiled_fullgraph_matches_eager_with_gradients(kind):
    q, k, v, options = inputs(kind)
    landmarks = options.get("landmarks")

    def f(q, k, v, landmarks):
        opts = dict(options, landmarks=landmarks) if landmarks is not None else options
        return kernels.attention(q, k, v, kind, **opts)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    grad = torch.randn(2, 2, 13, 8, dtype=torch.float64)
    results = []
    for fn in (f, compiled):
        leaves = [t.detach().requires_grad_() for t in (q, k, v)] + (
            [landmarks.detach().requires_grad_()] if landmarks is not None else []
        )
        out = fn(*leaves[:3], leaves[3] if landmarks is not None else None)
        out.backward(grad)
        results.append([out.detach()] + [t.grad for t in leaves])
    for eager, comp in zip(*results, strict=True):
        assert torch.allclose(eager, comp, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", kernels.KINDS)
def test_compiled_graph_holds_the_custom_op(kind):
    """Dynamo captures one opaque lavis3d::attention node (softmax on 'auto' stays SDPA, which inductor knows)."""
    q, k, v, options = inputs(kind, requires_grad=False)
    targets = []

    def recording_backend(gm, example_inputs):
        targets.extend(node.target for node in gm.graph.nodes if node.op == "call_function")
        return gm

    torch.compile(lambda q, k, v: kernels.attention(q, k, v, kind, **options), backend=recording_backend)(q, k, v)
    if kind == "softmax":
        assert torch.nn.functional.scaled_dot_product_attention in targets
    else:
        assert torch.ops.lavis3d.attention.default in targets, targets


def test_compiled_errors_name_the_argument():
    """Bad options still raise the eager path's errors (the op's implementation checks them)."""
    q, k, v, _ = inputs("nala", requires_grad=False)
    compiled = torch.compile(lambda q, k, v: kernels.attention(q, k, v, "nala", block_size=3), fullgraph=True)
    with pytest.raises(TypeError, match="block_size: kind 'nala' does not take this option"):
        compiled(q, k, v)
