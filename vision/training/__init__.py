"""LightningModules for the vision backbones."""

from .classification import ImageClassifier
from .mae import MAEPretrainer, save_encoder

__all__ = ["ImageClassifier", "MAEPretrainer", "save_encoder"]
