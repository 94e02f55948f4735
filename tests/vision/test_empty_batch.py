"""An empty batch (a detector's second stage with no boxes, the last shard of a split) gives empty outputs and
gradients, as timm's own ViT does, for every attention kind and the hierarchical models."""

import pytest
import timm
import torch

import vision  # noqa: F401  (registers the models)
from vision import ATTN_KINDS

from .tiny import TINY_HIERARCHICAL, TINY_VIT


@pytest.mark.parametrize("kind", ATTN_KINDS)
def test_lavit_with_an_empty_batch(kind):
    model = timm.create_model("lavit_tiny_patch16_224", attn_kind=kind, **TINY_VIT)
    reference = timm.create_model("vit_tiny_patch16_224", **TINY_VIT)
    x = torch.randn(0, 3, 32, 32, requires_grad=True)
    out = model(x)
    assert out.shape == reference(x).shape == (0, 5)
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    maps = model.forward_intermediates(x, intermediates_only=True)
    assert [m.shape for m in maps] == [(0, 32, 4, 4)] * 2


@pytest.mark.parametrize("name", ["nalaformer_t", "mala_t", "soft_tiny"])
def test_hierarchical_models_with_an_empty_batch(name):
    model = timm.create_model(name, **TINY_HIERARCHICAL)
    assert model(torch.randn(0, 3, 64, 64)).shape == (0, 5)
