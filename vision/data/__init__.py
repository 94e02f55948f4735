"""Data for the vision backbones: ImageFolder trees and generated shapes."""

from .datamodule import ClassificationData
from .synthetic import SHAPES, SyntheticShapes

__all__ = ["SHAPES", "ClassificationData", "SyntheticShapes"]
