"""Clustering for pseudo-labels. K-means in torch: k-means++ seeding and Lloyd iterations with chunked distances,
so memory stays at chunk_size x K extra however large the target set; deterministic for a seed on CPU and CUDA.
Feature conditioning before it (camera_normalize, reciprocal_expansion; condition_features chains them) and
diagnostics (cluster_purity by identity; camera_purity and camera_chance by camera)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check(features: Tensor, k: int, chunk_size: int) -> Tensor:
    if not isinstance(features, Tensor) or features.ndim != 2 or len(features) == 0:
        shape = list(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"features: expected a non-empty [N, D] tensor, got {shape}")
    if not 1 <= k <= len(features):
        raise ValueError(f"k: expected 1 <= k <= N = {len(features)}, got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected >= 1, got {chunk_size}")
    return features if features.dtype == torch.float64 else features.float()


def _nearest(x: Tensor, x_sq: Tensor, centroids: Tensor, chunk_size: int) -> tuple[Tensor, Tensor]:
    """For each row of x (squared norms x_sq), the index of its nearest centroid and the squared distance to it."""
    c_sq = centroids.pow(2).sum(dim=1)
    labels = torch.empty(len(x), dtype=torch.long, device=x.device)
    dist = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for start in range(0, len(x), chunk_size):
        chunk = x[start : start + chunk_size]
        d2 = x_sq[start : start + chunk_size, None] - 2 * chunk @ centroids.T + c_sq
        dist[start : start + chunk_size], labels[start : start + chunk_size] = d2.min(dim=1)
    return labels, dist.clamp_(min=0)


def _cluster_sums(x: Tensor, labels: Tensor, k: int, chunk_size: int) -> tuple[Tensor, Tensor]:
    """Per-cluster sums [k, D] and sizes [k]; one-hot matmuls rather than index_add_, whose CUDA atomics would
    make the result depend on thread timing."""
    sums = x.new_zeros(k, x.shape[1])
    for start in range(0, len(x), chunk_size):
        one_hot = torch.nn.functional.one_hot(labels[start : start + chunk_size], k).to(x.dtype)
        sums += one_hot.T @ x[start : start + chunk_size]
    return sums, torch.bincount(labels, minlength=k)


def kmeans_plusplus(features: Tensor, k: int, *, seed: int = 0, chunk_size: int = 4096) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii): each next centre drawn with probability proportional to the
    squared distance to the nearest centre so far -> [k, D]. The random numbers come from a CPU generator, so a
    seed picks the same centres on any device."""
    x = _check(features, k, chunk_size)
    x_sq = x.pow(2).sum(dim=1)
    generator = torch.Generator().manual_seed(seed)
    first = int(torch.randint(len(x), (1,), generator=generator))
    chosen = [first]
    _, best = _nearest(x, x_sq, x[first : first + 1], chunk_size)
    for _ in range(1, k):
        total = best.sum()
        if total <= 0:  # every point sits on a centre (duplicates): take any point not chosen yet
            taken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            taken[chosen] = True
            index = int(torch.nonzero(~taken)[0])
        else:
            u = float(torch.rand(1, generator=generator, dtype=torch.float64))
            cumulative = best.cumsum(0)
            index = min(int(torch.searchsorted(cumulative, cumulative[-1] * u, right=True)), len(x) - 1)
        chosen.append(index)
        _, d = _nearest(x, x_sq, x[index : index + 1], chunk_size)
        best = torch.minimum(best, d)
    return x[chosen].clone()


def kmeans(
    features: Tensor,
    k: int,
    *,
    iters: int = 100,
    seed: int = 0,
    chunk_size: int = 4096,
    tol: float = 1e-4,
    init: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means of [N, D] features into k clusters -> (labels [N] long, centroids [k, D]), on the
    features' device (float64 kept, anything else computed in float32).

    Seeded with k-means++ (or `init`, [k, D]). Stops after `iters` iterations, when no label changes, or when the
    centres move by at most `tol` x the mean per-dimension variance of the data (summed squared shift). A
    cluster left empty is re-seeded at the point farthest from its centre. The labels returned are the
    assignment to the centroids returned."""
    x = _check(features, k, chunk_size)
    if init is None:
        centroids = kmeans_plusplus(x, k, seed=seed, chunk_size=chunk_size)
    else:
        if init.shape != (k, x.shape[1]):
            raise ValueError(f"init: expected [{k}, {x.shape[1]}], got {list(init.shape)}")
        centroids = init.to(device=x.device, dtype=x.dtype).clone()
    x_sq = x.pow(2).sum(dim=1)
    threshold = tol * float(x.var(dim=0, unbiased=False).mean()) if len(x) > 1 else 0.0
    labels, dist = _nearest(x, x_sq, centroids, chunk_size)
    for _ in range(iters):
        sums, counts = _cluster_sums(x, labels, k, chunk_size)
        new = sums / counts.clamp(min=1).unsqueeze(1).to(x.dtype)
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):
            far = torch.argsort(dist, descending=True, stable=True)[: len(empty)]
            new[empty] = x[far]
        shift = float((new - centroids).pow(2).sum())
        centroids = new
        previous = labels
        labels, dist = _nearest(x, x_sq, centroids, chunk_size)
        if shift <= threshold or torch.equal(labels, previous):
            break
    return labels, centroids


def camera_normalize(features: Tensor, cams: Tensor, scale: bool = True) -> Tensor:
    """Per-camera standardisation [N, D] -> [N, D] L2-normalised: each camera's mean is subtracted and (with
    `scale`) each dimension divided by its std within that camera, so the clusters follow identities rather than
    the cameras' colour and exposure (the camera ids of unlabelled images are known, as in most unsupervised re-id
    work)."""
    if cams.shape != features.shape[:1]:
        raise ValueError(f"cams: expected [{len(features)}] camera ids, got {list(cams.shape)}")
    out = torch.empty_like(features)
    for cam in cams.unique():
        mask = cams == cam
        part = features[mask]
        out[mask] = part - part.mean(dim=0)
        if scale and len(part) > 1:
            out[mask] /= part.std(dim=0, unbiased=False) + 1e-6
    return F.normalize(out, dim=1)


def reciprocal_expansion(features: Tensor, k: int, chunk_size: int = 4096, cams: Tensor | None = None) -> Tensor:
    """Each L2-normalised feature [N, D] averaged with its k-reciprocal neighbours (j among i's k nearest and i
    among j's), then re-normalised: the neighbourhood consensus that MMT/SpCL get from k-reciprocal Jaccard
    distances, in a form K-means can take. With `cams` [N], neighbours are looked for only among images of other
    cameras (as camera-aware proxy methods pair images across cameras), so the averaging pulls an image toward its
    look-alikes in other cameras instead of toward its own camera's. Memory N x k (distances in chunks)."""
    n = len(features)
    if cams is not None:
        if cams.shape != (n,):
            raise ValueError(f"cams: expected [{n}] camera ids, got {list(cams.shape)}")
        k = min(k, n - int(torch.unique(cams, return_counts=True)[1].max()))  # images outside the largest camera
    k = min(k, n - 1)
    if k < 1:
        return features
    nearest = []
    for start in range(0, n, chunk_size):
        d = torch.cdist(features[start : start + chunk_size], features)
        if cams is None:
            nearest.append(d.topk(k + 1, largest=False).indices[:, 1:])  # the first is the image itself
        else:
            d.masked_fill_(cams[start : start + chunk_size, None] == cams[None, :], float("inf"))
            nearest.append(d.topk(k, largest=False).indices)
    nearest = torch.cat(nearest)
    rows = torch.arange(n, device=features.device)
    mutual = (nearest[nearest] == rows[:, None, None]).any(dim=2)  # [N, k]: i is among its neighbour's k nearest
    summed = features + (features[nearest] * mutual.unsqueeze(2).to(features.dtype)).sum(dim=1)
    return F.normalize(summed, dim=1)


def condition_features(
    features: Tensor, cams: Tensor, normalize: bool = False, expansion: int = 0, cross_camera: bool = False
) -> Tensor:
    """Stage 2's features for K-means [N, D] -> [N, D]: standardised per camera (`normalize`), then averaged with
    their `expansion` k-reciprocal neighbours (0: not), looked for among other cameras' images (`cross_camera`)."""
    if cross_camera and not expansion:
        raise ValueError("cross_camera: needs expansion > 0 (it picks the k-reciprocal neighbours' cameras)")
    if expansion < 0:
        raise ValueError(f"expansion: expected k >= 0, got {expansion}")
    out = camera_normalize(features, cams) if normalize else features
    return reciprocal_expansion(out, expansion, cams=cams if cross_camera else None) if expansion else out


def cluster_purity(labels: Tensor, truth: Tensor) -> float:
    """Fraction of items whose cluster's most common true label is their own (1: every cluster one class)."""
    pairs = labels.long() * (int(truth.max()) + 1) + truth.long()
    counts = torch.bincount(pairs, minlength=(int(labels.max()) + 1) * (int(truth.max()) + 1))
    return float(counts.view(-1, int(truth.max()) + 1).amax(dim=1).sum()) / len(labels)


def camera_purity(labels: Tensor, cams: Tensor) -> float:
    """Mean over clusters of the share of the cluster's most common camera (items labelled -1, noise, left out).
    1: every cluster sees one camera only; compare with camera_chance(cams) and with camera_purity(true ids, cams):
    clusters that follow identities are about as camera-pure as the identities themselves."""
    labels, cams = labels.long().flatten(), cams.long().flatten()
    if labels.shape != cams.shape or len(labels) == 0:
        shapes = f"{list(labels.shape)}, {list(cams.shape)}"
        raise ValueError(f"labels, cams: expected two non-empty [N] tensors of one length, got {shapes}")
    kept = labels >= 0
    if not kept.any():
        raise ValueError("labels: every item is noise (-1); no cluster to measure")
    _, cams = torch.unique(cams, return_inverse=True)  # any camera ids -> 0..C-1
    n_cams = int(cams.max()) + 1
    counts = torch.bincount(labels[kept] * n_cams + cams[kept], minlength=(int(labels.max()) + 1) * n_cams)
    counts = counts.view(-1, n_cams)
    sizes = counts.sum(dim=1)
    nonempty = sizes > 0
    return float((counts.amax(dim=1)[nonempty] / sizes[nonempty]).mean())


def camera_chance(cams: Tensor) -> float:
    """Share of the most common camera among all items: the camera purity that large clusters drawn without
    regard to the camera would tend to (small clusters show more by chance)."""
    if cams.numel() == 0:
        raise ValueError("cams: expected a non-empty tensor")
    return float(torch.unique(cams.flatten(), return_counts=True)[1].max()) / cams.numel()


__all__ = [
    "camera_chance",
    "camera_normalize",
    "camera_purity",
    "cluster_purity",
    "condition_features",
    "kmeans",
    "kmeans_plusplus",
    "reciprocal_expansion",
]
