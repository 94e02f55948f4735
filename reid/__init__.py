"""CORE-ReID: domain-adaptive person re-identification.

model = reid.load_model()                      # or reid.load_model("model.safetensors")
features = model.embed(["a.jpg", "b.jpg"])     # [N, D], L2-normalised, flip-averaged (BMFN)
result = reid.evaluate(distmat, q_pids, g_pids, q_camids, g_camids)   # mAP, cmc, mINP
distmat = reid.re_ranking(q_g, q_q, g_g)       # k-reciprocal, k1 20, k2 6, λ 0.3
matches = reid.rank(model, "q.jpg", gallery_paths, topk=10, rerank=False)   # [Match(path, distance, pid, camera)]
"""

from __future__ import annotations

import vision  # noqa: F401  (registers the re-id trunks with timm)

from .evaluation import evaluate, pairwise_distance
from .inference import ReIDModel, load_model, save_model
from .model import CoreReIDNet
from .re_ranking import re_ranking
from .search import Match, identity, rank

__all__ = [
    "CoreReIDNet",
    "Match",
    "ReIDModel",
    "evaluate",
    "identity",
    "load_model",
    "pairwise_distance",
    "rank",
    "re_ranking",
    "save_model",
]
