"""Re-identification ranking metrics (CMC, mAP, mINP) and query-gallery distance matrices.

Market-1501 protocol, as torchreid's ``eval_market1501`` and fast-reid's ``eval_market1501``: each query ranks
the whole gallery by ascending distance; gallery images of the query's identity taken by the query's own camera
are dropped from that ranking (matching them is trivial); a query whose identity has no image left is skipped.
On the remaining ranking, with ``rel_k`` = 1 where rank k holds the query's identity:

- CMC(k) = fraction of valid queries whose first correct match is at rank <= k (ranks counted from 1);
- AP = sum_k precision@k * rel_k / num_rel, averaged over valid queries as mAP;
- INP = num_rel / (rank of the last correct match), averaged as mINP (fast-reid, Ye et al. TPAMI 2021).

CUHK03 single-gallery-shot protocol (torchreid ``eval_cuhk03``): CMC is averaged over 10 draws per query, each
keeping one random gallery image per identity (after the same-camera removal); AP is computed on the full
ranking, exactly as torchreid computes it there, and so is INP (torchreid reports none for CUHK03). This path
sorts every row, so it is several times slower than the Market path on large galleries.

Equal distances are ranked by gallery index (a stable sort); the reference codes use an unstable sort there, so
only exact ties can make the numbers differ. The Market path sorts nothing: the rank of each gallery image of the
query's identity is the count of smaller distances in its row (one vectorised comparison pass per such image),
so a 20000 x 20000 matrix takes seconds where a full row argsort needs about half a minute on two cores. Rows
where a distance ties one of those images fall back to a stable sort.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

CUHK03_REPEATS = 10  # draws per query in the single-gallery-shot protocol (torchreid's num_repeats)
_CHUNK_ELEMENTS = 1 << 22  # distance entries handled at once: bounds the int64 temporaries to ~32 MiB each


def evaluate(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    *,
    single_gallery_shot: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Rank every query against the gallery and score the rankings (protocol in the module docstring).

    distmat: ``[num_query, num_gallery]`` numpy array or torch tensor (any device), smaller = more similar.
    pids/camids: 1-D arrays (numpy, torch or lists) of identity and camera labels, length-matched to distmat.
    single_gallery_shot: the CUHK03 classic protocol for CMC, with draws seeded by ``seed``.

    Returns ``{"mAP": float, "cmc": float64 array, "mINP": float, "num_valid_queries": int}``, all in 0..1 but
    the count; ``cmc[k]`` is rank-(k+1) accuracy and has ``min(max_rank, num_gallery)`` entries, as torchreid.
    """
    dist = _distance_matrix(distmat)
    nq, ng = dist.shape
    q_pid, g_pid = _labels(q_pids, g_pids, "q_pids", "g_pids", nq, ng)
    q_cam, g_cam = _labels(q_camids, g_camids, "q_camids", "g_camids", nq, ng)
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank: expected an integer >= 1, got {max_rank!r}")
    max_rank = min(int(max_rank), ng)

    num_pids = int(max(q_pid.max(), g_pid.max())) + 1
    per_pid = np.bincount(g_pid, minlength=num_pids)
    # Queries in order of how many gallery images share their identity, so that each chunk's padded width
    # (the number of counting passes over its distances) stays close to what its rows need.
    queries = np.argsort(per_pid[q_pid], kind="stable")
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(ng, CUHK03_REPEATS * num_pids if single_gallery_shot else 1))
    ap_sum = inp_sum = 0.0
    num_valid = 0
    first_match_hist = np.zeros(max_rank + 1)  # valid queries (or fractions of draws) by rank of first match
    for start in range(0, nq, chunk):
        rows = queries[start : start + chunk]
        d = _rows(dist, rows)
        if np.isnan(d).any():
            raise ValueError("distmat: contains NaN distances")
        same = g_pid[None, :] == q_pid[rows, None]
        removed = same & (g_cam[None, :] == q_cam[rows, None])
        row, rank = _relevant_ranks(d, same, removed)
        n_rel = np.bincount(row, minlength=len(rows))
        valid = n_rel > 0
        if not valid.any():
            continue
        first = np.cumsum(n_rel) - n_rel  # where each query's relevant items start in (row, rank)
        ordinal = np.arange(len(row)) - first[row] + 1  # 1, 2, ... within each query
        ap = np.bincount(row, weights=ordinal / (rank + 1.0), minlength=len(rows))
        ap_sum += float((ap[valid] / n_rel[valid]).sum())
        inp_sum += float((n_rel[valid] / (rank[(first + n_rel - 1)[valid]] + 1.0)).sum())
        num_valid += int(valid.sum())
        if single_gallery_shot:
            hits = _sampled_first_match(d[valid], g_pid, q_pid[rows[valid]], removed[valid], num_pids, rng)
            first_match_hist += np.bincount(np.minimum(hits, max_rank).ravel(), minlength=max_rank + 1)
        else:
            first_match_hist += np.bincount(np.minimum(rank[first[valid]], max_rank), minlength=max_rank + 1)

    if num_valid == 0:
        raise ValueError(
            "no query has a match: no query identity appears in the gallery under another camera "
            "(check q_pids/g_pids and q_camids/g_camids)"
        )
    if single_gallery_shot:
        first_match_hist /= CUHK03_REPEATS
    cmc = np.cumsum(first_match_hist[:max_rank]) / num_valid
    return {"mAP": ap_sum / num_valid, "cmc": cmc, "mINP": inp_sum / num_valid, "num_valid_queries": num_valid}


def _relevant_ranks(d: np.ndarray, same: np.ndarray, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based ranks of the relevant gallery items (same pid, not removed) in each row's ranking once the
    removed items are dropped. Returns flat (row, rank) arrays ordered by row, then rank."""
    c, ng = d.shape
    rows, cols = np.nonzero(same)  # the query's identity in the gallery: relevant and removed items
    if len(rows) == 0:
        return rows, rows
    m = np.bincount(rows, minlength=c)
    width = int(m.max())
    slot = np.arange(len(rows)) - (np.cumsum(m) - m)[rows]
    value = np.full((c, width), np.inf, dtype=d.dtype)
    value[rows, slot] = d[rows, cols]
    real = np.arange(width)[None, :] < m[:, None]

    # Rank of an item in the stable ranking = how many distances are smaller, when nothing ties with it.
    # Counting is one vectorised pass per padded column, far cheaper than sorting every row.
    below = np.empty((c, width), dtype=np.int64)
    ties = np.zeros(c, dtype=bool)
    for k in range(width):
        v = value[:, k : k + 1]
        below[:, k] = np.count_nonzero(d < v, axis=1)
        ties |= real[:, k] & (np.count_nonzero(d <= v, axis=1) != below[:, k] + 1)
    for r in np.flatnonzero(ties):  # rare: duplicated images or integer distances; rank by a stable sort
        position = np.empty(ng, dtype=np.int64)
        position[np.argsort(d[r], kind="stable")] = np.arange(ng)
        below[r, : m[r]] = position[cols[rows == r]]

    below[~real] = ng + np.arange(width)[None, :].repeat(c, 0)[~real]  # padding ranks last, still distinct
    order = np.argsort(below, axis=1)
    rank = np.take_along_axis(below, order, 1)
    gone = np.zeros((c, width), dtype=bool)
    gone[rows, slot] = removed[rows, cols]
    gone = np.take_along_axis(gone, order, 1)
    relevant = np.take_along_axis(real, order, 1) & ~gone
    kept_rank = rank - (np.cumsum(gone, 1) - gone)  # removed items ranked before it no longer count
    return np.nonzero(relevant)[0], kept_rank[relevant]


def _sampled_first_match(
    d: np.ndarray, g_pid: np.ndarray, q_pid: np.ndarray, removed: np.ndarray, num_pids: int, rng: np.random.Generator
) -> np.ndarray:
    """CUHK03 draws: [rows, CUHK03_REPEATS] 0-based rank of the query's identity when every gallery identity
    keeps one uniformly drawn image (removed images excluded; every row has at least one relevant image)."""
    c, ng = d.shape
    order = np.argsort(d, axis=1, kind="stable")
    label = np.where(np.take_along_axis(removed, order, 1), num_pids, g_pid[order])  # removed: an ignored group
    grouped = np.argsort(label, axis=1, kind="stable")  # ranked positions, grouped by identity
    counts = np.bincount((np.arange(c)[:, None] * (num_pids + 1) + label).ravel(), minlength=c * (num_pids + 1))
    counts = counts.reshape(c, num_pids + 1)[:, :num_pids]
    starts = np.cumsum(counts, 1) - counts
    u = rng.random((c, CUHK03_REPEATS, num_pids))
    offset = np.minimum((u * counts[:, None, :]).astype(np.int64), np.maximum(counts[:, None, :] - 1, 0))
    pick = np.minimum(starts[:, None, :] + offset, ng - 1).reshape(c, -1)
    drawn = np.take_along_axis(grouped, pick, 1).reshape(c, CUHK03_REPEATS, num_pids)
    drawn[np.broadcast_to((counts == 0)[:, None, :], drawn.shape)] = ng  # absent identities never come first
    own = drawn[np.arange(c), :, q_pid][:, :, None]
    return (drawn < own).sum(2)


# ---------------------------------------------------------------- distances


def pairwise_distance(
    query_features: Any, gallery_features: Any, metric: str = "euclidean", *, chunk_size: int = 4096
) -> np.ndarray:
    """``[num_query, num_gallery]`` float32 numpy distance matrix between two feature sets ``[N, D]``.

    metric: "euclidean" (L2 distance), "sqeuclidean" (its square: what torchreid, MMT and CORE-ReID call
    "euclidean" and feed to re-ranking) or "cosine" (1 - cosine similarity). Computed on the features' device
    in ``chunk_size`` query rows at a time, in float64 for float64 features and float32 otherwise.
    """
    if metric not in ("euclidean", "sqeuclidean", "cosine"):
        raise ValueError(f"metric: expected 'euclidean', 'sqeuclidean' or 'cosine', got {metric!r}")
    x = _features(query_features, "query_features")
    y = _features(gallery_features, "gallery_features").to(x.device)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"gallery_features: feature size {y.shape[1]} does not match query_features' {x.shape[1]} "
            f"(shapes {tuple(x.shape)} and {tuple(y.shape)})"
        )
    dtype = torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    if metric == "cosine":
        x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)
    y_sq = y.pow(2).sum(1)
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.float32)
    for start in range(0, x.shape[0], chunk_size):
        xs = x[start : start + chunk_size]
        if metric == "cosine":
            block = 1.0 - xs @ y.T
        else:
            block = (xs.pow(2).sum(1, keepdim=True) + y_sq[None, :] - 2.0 * xs @ y.T).clamp_(min=0)
            if metric == "euclidean":
                block = block.sqrt_()
        out[start : start + chunk_size] = block.float().cpu().numpy()
    return out


# ---------------------------------------------------------------- input checks


def _distance_matrix(distmat: Any) -> np.ndarray | torch.Tensor:
    """A checked 2-D matrix: numpy arrays and CPU tensors as numpy (no copy), other tensors left on their device."""
    if isinstance(distmat, torch.Tensor):
        if distmat.dtype == torch.bool or distmat.is_complex():
            raise TypeError(f"distmat: expected real distances, got dtype {distmat.dtype}")
        dist = distmat.detach()
        if dist.device.type == "cpu":
            dist = dist.float().numpy() if dist.dtype in (torch.float16, torch.bfloat16) else dist.numpy()
    else:
        dist = np.asarray(distmat)
        if dist.dtype.kind not in "iuf":
            raise TypeError(f"distmat: expected a numeric array or tensor, got dtype {dist.dtype}")
    if dist.ndim != 2 or 0 in dist.shape:
        raise ValueError(f"distmat: expected a 2-D [num_query, num_gallery] matrix, got shape {tuple(dist.shape)}")
    return dist


def _rows(dist: np.ndarray | torch.Tensor, rows: np.ndarray) -> np.ndarray:
    """Some rows of the distance matrix as a float32 or float64 numpy array."""
    if isinstance(dist, torch.Tensor):
        block = dist[torch.from_numpy(rows).to(dist.device)]
        return block.double().cpu().numpy() if block.dtype == torch.float64 else block.float().cpu().numpy()
    block = dist[rows]
    return block if block.dtype in (np.float32, np.float64) else block.astype(np.float64)


def _labels(query: Any, gallery: Any, q_name: str, g_name: str, nq: int, ng: int) -> tuple[np.ndarray, np.ndarray]:
    """Query and gallery labels as dense int64 codes shared by both (any comparable dtype is accepted)."""
    arrays = []
    for value, name, n, side in ((query, q_name, nq, "num_query"), (gallery, g_name, ng, "num_gallery")):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if array.dtype.kind not in "biufUS":
            raise TypeError(f"{name}: expected integer (or string) labels, got dtype {array.dtype}")
        if array.ndim != 1 or len(array) != n:
            raise ValueError(f"{name}: expected a 1-D array of length {side}={n}, got shape {array.shape}")
        arrays.append(array)
    try:
        _, codes = np.unique(np.concatenate(arrays), return_inverse=True)
    except TypeError as error:
        raise TypeError(f"{q_name}, {g_name}: labels of incomparable types ({error})") from error
    codes = codes.reshape(-1).astype(np.int64)
    return codes[:nq], codes[nq:]


def _features(features: Any, name: str) -> torch.Tensor:
    t = features.detach() if isinstance(features, torch.Tensor) else torch.as_tensor(np.asarray(features))
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise TypeError(f"{name}: expected numeric features, got dtype {t.dtype}")
    if t.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D [N, D] feature matrix, got shape {tuple(t.shape)}")
    return t
