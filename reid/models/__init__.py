"""Re-id models, by role: core_reid.py holds the CORE-ReID network (trunk, BNNeck, ECAB half branches,
ensemble fusion); inference.py the user-facing ReIDModel (images in, BMFN embeddings out) and its files on disk."""

from .core_reid import ECAB, LEVELS, CoreReIDNet, ensemble_fusion
from .inference import DEFAULT_WEIGHTS, ReIDModel, load_model, read_model_files, save_model

__all__ = [
    "DEFAULT_WEIGHTS",
    "ECAB",
    "LEVELS",
    "CoreReIDNet",
    "ReIDModel",
    "ensemble_fusion",
    "load_model",
    "read_model_files",
    "save_model",
]
