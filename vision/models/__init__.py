"""Models registered with timm on import."""

from .lavit import LaViT

__all__ = ["LaViT"]
