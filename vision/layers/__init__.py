"""Layers shared by the vision models."""

from .attention import ATTN_KINDS, ATTN_LAYERS, KernelAttention, bind, create_attention, get_attn_layer
from .rope import rope_2d, rope_tables
from .tokens import TokenLayout

__all__ = [
    "ATTN_KINDS",
    "ATTN_LAYERS",
    "KernelAttention",
    "TokenLayout",
    "bind",
    "create_attention",
    "get_attn_layer",
    "rope_2d",
    "rope_tables",
]
