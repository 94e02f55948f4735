"""Models registered with timm on import."""

from .hilavit import HiLaViT
from .lavit import LaViT

__all__ = ["HiLaViT", "LaViT"]
