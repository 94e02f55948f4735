"""A lavit_tiny-shaped model with each attention kind gives the same logits through the fused Triton kernels as
through the reference path (on the CPU the kernels run under Triton's interpreter: tests/conftest.py)."""

import pytest
import timm
import torch

import vision  # noqa: F401  (registers the models)
from kernels.registry import KIND_TABLE

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FUSED = tuple(kind for kind, spec in KIND_TABLE.items() if spec.triton)
TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10)  # 1 + 16 tokens, D = 16


@pytest.mark.parametrize("kind", FUSED)
def test_fused_and_reference_logits_agree(kind):
    torch.manual_seed(0)
    rope = kind != "soft"
    fused = timm.create_model("lavit_tiny_patch16_224", attn_kind=kind, rope=rope, attn_backend="triton", **TINY)
    reference = timm.create_model("lavit_tiny_patch16_224", attn_kind=kind, rope=rope, attn_backend="reference", **TINY)
    reference.load_state_dict(fused.state_dict())
    fused, reference = fused.to(DEVICE).eval(), reference.to(DEVICE).double().eval()  # the truth in float64
    images = torch.randn(2, 3, 32, 32, device=DEVICE)
    with torch.no_grad():
        got, want = fused(images), reference(images.double())
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    err = ((got.double() - want).pow(2).mean().sqrt() / want.pow(2).mean().sqrt()).item()
    assert err < 1e-3, f"{kind}: relative RMS error of the logits {err:.2e}"
