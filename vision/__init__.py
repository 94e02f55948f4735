"""Vision backbones on the shared attention library, registered with timm.

import vision, timm
model = timm.create_model("lavit_small_patch16_224", attn_kind="nala")
vision.list_models()
"""

from __future__ import annotations

import timm

from . import models  # noqa: F401  (registers the models with timm)
from .checkpoint import LoadReport, load_checkpoint, read_state_dict
from .layers import ATTN_KINDS, ATTN_LAYERS, KernelAttention, create_attention, get_attn_layer
from .models.mae import MaskedAutoencoder
from .training import ImageClassifier, MAEPretrainer


def list_models() -> list[str]:
    """Our model names, as timm lists them."""
    return sorted(name for name in timm.list_models() if name in _OURS)


_OURS = {
    "lavit_tiny_patch16_224",
    "lavit_small_patch16_224",
    "lavit_base_patch16_224",
    "nalaformer_t",
    "nalaformer_s",
    "mala_t",
    "soft_tiny",
    "resnet50_reid",
    "resnet18_reid",
    "resnet_reid_tiny",
}

__all__ = [
    "ATTN_KINDS",
    "ATTN_LAYERS",
    "ImageClassifier",
    "KernelAttention",
    "LoadReport",
    "MAEPretrainer",
    "MaskedAutoencoder",
    "create_attention",
    "get_attn_layer",
    "list_models",
    "load_checkpoint",
    "read_state_dict",
]
