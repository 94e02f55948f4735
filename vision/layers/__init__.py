"""Layers shared by the vision models."""

from .attention import ATTN_KINDS, KernelAttention
from .rope import rope_2d
from .tokens import TokenLayout

__all__ = ["ATTN_KINDS", "KernelAttention", "TokenLayout", "rope_2d"]
