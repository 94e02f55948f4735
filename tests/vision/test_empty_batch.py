"""An empty batch (a detector's second stage with no boxes, the last shard of a split) gives empty outputs and
gradients, as timm's own ViT does, for every attention kind and the hierarchical models."""

import pytest
import timm
import torch

import vision  # noqa: F401  (registers the models)
from vision import ATTN_KINDS

SMALL_LAVIT = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)
SMALL_HIERARCHICAL = dict(embed_dims=(16, 16, 32, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), num_classes=5)


@pytest.mark.parametrize("kind", ATTN_KINDS)
def test_lavit_with_an_empty_batch(kind):
    model = timm.create_model("lavit_tiny_patch16_224", attn_kind=kind, **SMALL_LAVIT)
    reference = timm.create_model("vit_tiny_patch16_224", **SMALL_LAVIT)
    x = torch.randn(0, 3, 32, 32, requires_grad=True)
    out = model(x)
    assert out.shape == reference(x).shape == (0, 5)
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    maps = model.forward_intermediates(x, intermediates_only=True)
    assert [m.shape for m in maps] == [(0, 32, 4, 4)] * 2


@pytest.mark.parametrize("name", ["nalaformer_t", "mala_t", "soft_tiny"])
def test_hierarchical_models_with_an_empty_batch(name):
    model = timm.create_model(name, **SMALL_HIERARCHICAL)
    assert model(torch.randn(0, 3, 64, 64)).shape == (0, 5)
