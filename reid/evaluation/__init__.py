"""Re-identification evaluation, by role (as fast-reid's evaluation/): ranking.py holds the metrics of a distance
matrix (`evaluate`: CMC, mAP, mINP under the Market-1501 or CUHK03 protocol) and `pairwise_distance`;
evaluator.py holds `ReIDEvaluator`, the object (reset / update / compute) that collects embeddings batch by
batch during validation and testing and scores them with `evaluate`; folder.py scores an embedding function on a
dataset's test split (`evaluate_folder`)."""

from __future__ import annotations

from .evaluator import ReIDEvaluator
from .folder import evaluate_folder
from .ranking import evaluate, pairwise_distance

__all__ = ["ReIDEvaluator", "evaluate", "evaluate_folder", "pairwise_distance"]
