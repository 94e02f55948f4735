"""Data for the vision backbones: ImageFolder trees and generated shapes."""

from .datamodule import ClassificationData
from .synthetic import SHAPES, STYLES, SyntheticShapes

__all__ = ["SHAPES", "STYLES", "ClassificationData", "SyntheticShapes"]
