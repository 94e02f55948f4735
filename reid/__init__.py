"""CORE-ReID: domain-adaptive person re-identification.

model = reid.load_model()                      # or reid.load_model("model.safetensors")
features = model.embed(["a.jpg", "b.jpg"])     # [N, D], L2-normalised, flip-averaged (BMFN)
result = reid.evaluate(distmat, q_pids, g_pids, q_camids, g_camids)   # mAP, cmc, mINP
distmat = reid.re_ranking(q_g, q_q, g_g)       # k-reciprocal, k1 20, k2 6, λ 0.3
matches = reid.rank(model, "q.jpg", "gallery/", topk=10)   # [Match(path, distance, pid, camera)]

The names below load on first use, so that `python -m reid.search --help` answers without importing torch and
running the command module never finds itself already imported by the package.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from common.lazy import lazy_names

# the submodule -> the public names it defines
_LAZY = {
    "evaluation": ("evaluate", "pairwise_distance"),
    "models.core_reid": ("CoreReIDNet",),
    "models.inference": ("ReIDModel", "load_model", "save_model"),
    "re_ranking": ("re_ranking",),
    "search": ("Match", "SkippedImageWarning", "identity", "rank"),
}
__all__ = [
    "CoreReIDNet",
    "Match",
    "ReIDModel",
    "SkippedImageWarning",
    "evaluate",
    "identity",
    "load_model",
    "pairwise_distance",
    "rank",
    "re_ranking",
    "save_model",
]

if TYPE_CHECKING:
    from .evaluation import evaluate, pairwise_distance
    from .models.core_reid import CoreReIDNet
    from .models.inference import ReIDModel, load_model, save_model
    from .re_ranking import re_ranking
    from .search import Match, SkippedImageWarning, identity, rank


__getattr__, __dir__ = lazy_names(__name__, _LAZY)


class _Package(types.ModuleType):
    """`reid.re_ranking` names the function, as it always has, even though a submodule shares its name: the
    import system's binding of the submodule onto the package is ignored (it stays in sys.modules)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "re_ranking" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
