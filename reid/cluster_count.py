"""How many clusters the target's features hold, read from the data rather than set per data set: DBSCAN on the
k-reciprocal Jaccard distances (the clustering of SpCL and MMT), with its radius eps taken from the distribution of
each image's distance to its (min_samples - 1)-th nearest neighbour instead of a fixed number per data set."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from .evaluation import pairwise_distance
from .re_ranking import jaccard_distance


def _square(dist: Any) -> np.ndarray:
    d = dist.detach().cpu().numpy() if isinstance(dist, Tensor) else np.asarray(dist)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] == 0:
        raise ValueError(f"dist: expected a non-empty square [N, N] distance matrix, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("dist: contains NaN or infinite distances")
    return d


def knn_radius(dist: Any, k: int, quantile: float = 0.5) -> float:
    """The `quantile` of every point's distance to its k-th nearest other point ([N, N] distances, diagonal
    ignored): the DBSCAN radius at which that share of the points has k neighbours, i.e. is a core point."""
    d = _square(dist).astype(np.float64)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k < len(d):
        raise ValueError(f"k: expected an integer in [1, N - 1 = {len(d) - 1}], got {k!r}")
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile: expected a number in [0, 1], got {quantile!r}")
    others = d.copy()
    np.fill_diagonal(others, np.inf)
    kth = np.partition(others, k - 1, axis=1)[:, k - 1]
    return float(np.quantile(kth, quantile))


def dbscan(dist: Any, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN on a precomputed [N, N] distance matrix -> labels [N] (int64, clusters 0..C-1 in order of their
    first core point, -1 for noise). A core point has at least `min_samples` points (itself included) within
    `eps`; core points within `eps` of each other share a cluster; any other point within `eps` of a core point
    joins the cluster of its nearest core point; the rest is noise."""
    d = _square(dist)
    if not eps >= 0:
        raise ValueError(f"eps: expected a number >= 0, got {eps!r}")
    if not isinstance(min_samples, (int, np.integer)) or isinstance(min_samples, bool) or min_samples < 1:
        raise ValueError(f"min_samples: expected an integer >= 1, got {min_samples!r}")
    near = d <= eps
    np.fill_diagonal(near, True)
    core = near.sum(1) >= min_samples
    labels = np.full(len(d), -1, dtype=np.int64)
    cluster = 0
    for seed in np.flatnonzero(core):
        if labels[seed] >= 0:
            continue
        labels[seed] = cluster
        frontier = np.array([seed])
        while len(frontier):  # breadth-first over the core points reachable through core points
            reached = near[frontier].any(0) & core & (labels < 0)
            labels[reached] = cluster
            frontier = np.flatnonzero(reached)
        cluster += 1
    border = np.flatnonzero(~core & (near[:, core].any(1) if core.any() else False))
    if len(border):
        to_core = np.where(near[np.ix_(border, core)], d[np.ix_(border, core)], np.inf)
        labels[border] = labels[np.flatnonzero(core)[to_core.argmin(1)]]
    return labels


def estimate_num_clusters(
    features: Tensor, *, k1: int = 20, k2: int = 6, min_samples: int = 4, quantile: float = 0.8
) -> tuple[int, dict[str, float]]:
    """K for [N, D] features: the clusters DBSCAN finds on their k-reciprocal Jaccard distances (k1, k2 as in
    re-ranking, squared Euclidean distances underneath; eps = knn_radius(J, min_samples - 1, quantile)), plus the
    points it left as noise counted as identities of the median cluster size (noise is mostly small identities
    whose images never became core points). Returns (K >= 1, {"eps", "noise": the noise fraction, "dbscan": the
    clusters found})."""
    if not isinstance(features, Tensor) or features.ndim != 2 or len(features) <= min_samples:
        shape = list(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"features: expected an [N, D] tensor with N > min_samples = {min_samples}, got {shape}")
    x = features.detach().float()
    jaccard = jaccard_distance(pairwise_distance(x, x, "sqeuclidean"), k1=k1, k2=k2)
    eps = knn_radius(jaccard, max(1, min_samples - 1), quantile)
    labels = dbscan(jaccard, eps, min_samples)
    found, noise = int(labels.max()) + 1, int((labels < 0).sum())
    k = found + (round(noise / float(np.median(np.bincount(labels[labels >= 0])))) if found else noise)
    return max(k, 1), {"eps": eps, "noise": noise / len(labels), "dbscan": float(found)}


__all__ = ["dbscan", "estimate_num_clusters", "knn_radius"]
