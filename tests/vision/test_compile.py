"""torch.compile(model, fullgraph=True) on every model family with every attention kind: it compiles (no graph
break: kernels.attention is one custom op) and gives eager's logits and gradients (the reference path on the CPU,
the fused kernels on CUDA)."""

import pytest
import timm
import torch

import vision
from vision import ATTN_KINDS

from .tiny import TINY_HIERARCHICAL, TINY_VIT

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

TINY_HIERARCHICAL = TINY_HIERARCHICAL | dict(head_hidden_size=32)


@pytest.fixture(autouse=True)
def fresh_compiler():
    """Each test compiles new models of the same classes: without a reset dynamo's recompile limit is reached."""
    torch.compiler.reset()
    yield
    torch.compiler.reset()


def check_compiled_matches_eager(model: torch.nn.Module, images: torch.Tensor) -> None:
    model, images = model.to(DEVICE), images.to(DEVICE)
    compiled = torch.compile(model, fullgraph=True)
    outputs, grads = [], []
    for fn in (model, compiled):
        model.zero_grad(set_to_none=True)
        out = fn(images)
        out.square().mean().backward()
        outputs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert torch.allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5), (outputs[0] - outputs[1]).abs().max()
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], rtol=1e-3, atol=1e-5), name


@pytest.mark.parametrize("kind", ATTN_KINDS)
def test_lavit_compiles_fullgraph_and_matches_eager(kind):
    torch.manual_seed(0)
    model = timm.create_model("lavit_tiny_patch16_224", attn_kind=kind, rope=kind != "soft", **TINY_VIT)
    check_compiled_matches_eager(model.train(), torch.randn(2, 3, 32, 32))


@pytest.mark.slow  # about 3 min on 2 CPU cores (inductor compiles forward and backward)
@pytest.mark.parametrize(
    "kinds", [("nala", "mala", "soft", "softmax"), ("lightning", "norm", "sigmoid", "local")], ids="-".join
)
def test_hierarchical_compiles_fullgraph_and_matches_eager(kinds):
    torch.manual_seed(0)
    model = vision.models.HiLaViT(attn_kinds=kinds, **TINY_HIERARCHICAL).eval()  # eval: BatchNorm's running stats
    check_compiled_matches_eager(model, torch.randn(2, 3, 64, 64))
