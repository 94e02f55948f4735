"""Models registered with timm on import."""

from .hilavit import HiLaViT
from .lavit import LaViT
from .resnet_reid import ResNetReID

__all__ = ["HiLaViT", "LaViT", "ResNetReID"]
