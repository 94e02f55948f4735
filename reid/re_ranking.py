"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal Encoding",
CVPR 2017), with the semantics of the implementation torchreid, fast-reid and CORE-ReID share.

All ``N = num_query + num_gallery`` images are ranked against each other with the distances
``D = [[q_q, q_g], [q_g^T, g_g]]``, squared and scaled so that row i of the working matrix is column i of D
divided by that column's maximum (the reference's ``(D**2 / D**2.max(0)).T``). Then, per image i:

1. R(i): its k1-reciprocal neighbours: j among i's k1+1 nearest with i among j's k1+1 nearest;
2. expansion: for each j in R(i), R_half(j) (same with round(k1/2), numpy rounding) joins when more than 2/3
   of it lies in R(i);
3. V[i] = exp(-dist) weights over the expanded set, normalised to sum 1;
4. local query expansion: V[i] = mean of V over i's k2 nearest (skipped when k2 == 1);
5. Jaccard distance between query i and gallery j: 1 - s / (2 - s), s = sum_k min(V[i,k], V[j,k]);

and the result is ``jaccard * (1 - lambda_value) + scaled_distance * lambda_value`` for the query-gallery block.

V is kept sparse (a few dozen to a few hundred entries per row) and the scaled N x N matrix is never stored:
it is streamed in row blocks to find each image's nearest neighbours, so memory is O(N * k1 * k2) beyond the
inputs and the ``[num_query, num_gallery]`` result. Equal distances are ranked by index (the reference uses
an unstable sort, so only exact ties can make results differ).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

_BLOCK_ELEMENTS = 1 << 23  # scaled-distance entries streamed at once (32 MiB of float32)


def re_ranking(q_g: Any, q_q: Any, g_g: Any, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked ``[num_query, num_gallery]`` float32 distances (method in the module docstring).

    q_g ``[nq, ng]``, q_q ``[nq, nq]``, g_g ``[ng, ng]``: distance matrices (numpy arrays or torch tensors), e.g.
    from ``pairwise_distance``; the paper's settings are k1=20, k2=6, lambda_value=0.3.
    """
    q_g = _matrix(q_g, "q_g")
    nq, ng = q_g.shape
    q_q = _matrix(q_q, "q_q", (nq, nq))
    g_g = _matrix(g_g, "g_g", (ng, ng))
    _check_ks(k1, k2)
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value: expected a number in [0, 1], got {lambda_value!r}")

    scale, v_rows, v_cols, v_vals = _encode(q_g, q_q, g_g, k1, k2, "q_q, q_g, g_g")
    jaccard = _jaccard(v_rows, v_cols, v_vals, nq, nq + ng)

    original = (_square(q_g) / scale[:nq, None]).astype(np.float32)
    lam = float(lambda_value)
    return jaccard * np.float32(1 - lam) + original * np.float32(lam)


def jaccard_distance(dist: Any, k1: int = 20, k2: int = 6) -> np.ndarray:
    """``[N, N]`` float32 k-reciprocal Jaccard distances among one set of images, from their ``[N, N]`` distance
    matrix: steps 1-5 of the module docstring with every image both query and gallery (0 on the diagonal; 1
    between images whose expanded neighbourhoods do not overlap). SpCL and MMT cluster this with DBSCAN."""
    d = _matrix(dist, "dist")
    n = len(d)
    if d.shape != (n, n):
        raise ValueError(f"dist: expected a square [N, N] matrix, got shape {d.shape}")
    _check_ks(k1, k2)
    no_gallery = np.zeros((n, 0), d.dtype)
    _, rows, cols, vals = _encode(no_gallery, d, np.zeros((0, 0), d.dtype), k1, k2, "dist")
    # V's rows serve as both the query block (0..N-1) and the gallery block (N..2N-1) of the Jaccard step
    return _jaccard(np.concatenate([rows, rows + n]), np.concatenate([cols, cols]), np.tile(vals, 2), n, 2 * n)


def _check_ks(k1: Any, k2: Any) -> None:
    for name, value in (("k1", k1), ("k2", k2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")


def _encode(q_g, q_q, g_g, k1: int, k2: int, names: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-4 over all N images: the column scale [N] and the sparse V (rows, cols, values)."""
    n = len(q_q) + len(g_g)
    scale = _column_max_squared(q_g, q_q, g_g)
    if not (scale > 0).all():
        raise ValueError(f"{names}: every image needs a nonzero distance to some other image")
    neighbours = _nearest(q_g, q_q, g_g, scale, min(max(k1 + 1, k2), n))
    v_rows, v_cols, v_vals = _reciprocal_weights(neighbours, k1, q_g, q_q, g_g, scale)
    if k2 != 1:
        v_rows, v_cols, v_vals = _query_expansion(v_rows, v_cols, v_vals, neighbours[:, :k2], n)
    return scale, v_rows, v_cols, v_vals


# ---------------------------------------------------------------- the scaled distance matrix, streamed


def _square(block: np.ndarray) -> np.ndarray:
    return np.square(block).astype(np.float32, copy=False)


def _column_max_squared(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray) -> np.ndarray:
    """Max over each column of D**2 (float32), with D = [[q_q, q_g], [q_g^T, g_g]]."""

    def abs_max(x: np.ndarray, axis: int) -> np.ndarray:  # max |x| without an |x| temporary (0 over no entries)
        return np.maximum(x.max(axis, initial=0), -x.min(axis, initial=0))

    query = np.maximum(abs_max(q_q, 0), abs_max(q_g, 1))
    gallery = np.maximum(abs_max(q_g, 0), abs_max(g_g, 0))
    return _square(np.concatenate([query, gallery]))


def _scaled_rows(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, scale: np.ndarray, a: int, b: int) -> np.ndarray:
    """Rows a..b-1 of the working matrix: columns a..b-1 of D**2, each divided by its maximum."""
    nq = q_g.shape[0]
    parts = []
    if a < nq:  # query images: column i of D is [q_q[:, i]; q_g[i, :]]
        hi = min(b, nq)
        parts.append(np.concatenate([_square(q_q[:, a:hi].T), _square(q_g[a:hi])], axis=1))
    if b > nq:  # gallery image j: [q_g[:, j]; g_g[:, j]]
        lo = max(a, nq) - nq
        parts.append(np.concatenate([_square(q_g[:, lo : b - nq].T), _square(g_g[:, lo : b - nq].T)], axis=1))
    block = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return block / scale[a:b, None]


def _scaled_entries(
    q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, scale: np.ndarray, i: np.ndarray, j: np.ndarray
) -> np.ndarray:
    """Working-matrix entries (i, j) = D[j, i]**2 / scale[i], gathered from the three input blocks."""
    nq = q_g.shape[0]
    value = np.empty(len(i), dtype=np.float32)
    for rows_q, cols_q, source in (
        (True, True, lambda r, c: q_q[c, r]),
        (True, False, lambda r, c: q_g[r, c - nq]),
        (False, True, lambda r, c: q_g[c, r - nq]),
        (False, False, lambda r, c: g_g[c - nq, r - nq]),
    ):
        sel = ((i < nq) == rows_q) & ((j < nq) == cols_q)
        value[sel] = _square(source(i[sel], j[sel]))
    return value / scale[i]


def _nearest(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, scale: np.ndarray, k: int) -> np.ndarray:
    """[N, k] indices of each image's k nearest in the working matrix, by (distance, index)."""
    n = scale.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    step = max(1, _BLOCK_ELEMENTS // n)
    for a in range(0, n, step):
        b = min(a + step, n)
        block = _scaled_rows(q_g, q_q, g_g, scale, a, b)
        kth = torch.topk(torch.from_numpy(block), k, dim=1, largest=False).values[:, -1:].numpy()
        chosen = block <= kth
        for r in np.flatnonzero(chosen.sum(1) != k):  # ties at the k-th value: keep the lowest indices
            at_kth = np.flatnonzero(block[r] == kth[r])
            chosen[r, at_kth[k - int((block[r] < kth[r]).sum()) :]] = False
        idx = np.nonzero(chosen)[1].reshape(b - a, k)  # ascending index within each row
        out[a:b] = np.take_along_axis(idx, np.argsort(np.take_along_axis(block, idx, 1), 1, kind="stable"), 1)
    return out


# ---------------------------------------------------------------- k-reciprocal encoding


def _reciprocal(neighbours: np.ndarray, k: int) -> np.ndarray:
    """[N, k+1] mask: is neighbours[i, s] a k-reciprocal neighbour of i (i among its k+1 nearest too)?"""
    forward = neighbours[:, : k + 1]
    n = len(forward)
    mask = np.empty(forward.shape, dtype=bool)
    step = max(1, (1 << 22) // forward.shape[1] ** 2)
    for a in range(0, n, step):
        back = forward[forward[a : a + step]]  # [rows, k+1, k+1]: the nearest of each neighbour
        mask[a : a + step] = (back == np.arange(a, min(a + step, n))[:, None, None]).any(2)
    return mask


def _reciprocal_weights(neighbours, k1, q_g, q_q, g_g, scale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse V (rows, cols, values sorted by row then col): Gaussian weights over each image's expanded
    k-reciprocal set."""
    n = len(neighbours)
    half = int(np.around(k1 / 2.0))
    forward, recip = neighbours[:, : k1 + 1], _reciprocal(neighbours, k1)
    forward_half, recip_half = neighbours[:, : half + 1], _reciprocal(neighbours, half)
    kf, kh = forward.shape[1], forward_half.shape[1]
    rows_out, cols_out = [], []
    step = max(1, (1 << 22) // (kf * kh * kf))
    for a in range(0, n, step):
        b = min(a + step, n)
        own, own_mask = forward[a:b], recip[a:b]  # R(i) = own[own_mask]
        cand = forward_half[own]  # [rows, kf, kh]: R_half of each member of R(i), padded
        cand_mask = recip_half[own] & own_mask[:, :, None]
        in_own = ((cand[..., None] == own[:, None, None, :]) & own_mask[:, None, None, :]).any(3)
        overlap = (in_own & cand_mask).sum(2)
        joins = overlap > 2.0 / 3 * cand_mask.sum(2)  # the reference's strict "more than 2/3" rule
        ids = np.concatenate([own, cand.reshape(b - a, -1)], axis=1)
        keep = np.concatenate([own_mask, (cand_mask & joins[:, :, None]).reshape(b - a, -1)], axis=1)
        ids = np.where(keep, ids, n)  # n: not in the set
        ids.sort(axis=1)
        first = np.ones_like(keep)
        first[:, 1:] = ids[:, 1:] != ids[:, :-1]
        r, c = np.nonzero(first & (ids < n))
        rows_out.append(r + a)
        cols_out.append(ids[r, c])
    rows, cols = np.concatenate(rows_out), np.concatenate(cols_out)
    weight = np.exp(-_scaled_entries(q_g, q_q, g_g, scale, rows, cols))
    total = np.bincount(rows, weights=weight, minlength=n)
    return rows, cols, (weight / total[rows]).astype(np.float32)


def _query_expansion(rows, cols, vals, nearest: np.ndarray, n: int):
    """V[i] <- mean of V over i's k2 nearest rows (sparse)."""
    k2 = nearest.shape[1]
    starts = np.searchsorted(rows, np.arange(n + 1))
    src = nearest.ravel()  # row i takes rows nearest[i, :]
    lengths = starts[src + 1] - starts[src]
    dest = np.repeat(np.repeat(np.arange(n), k2), lengths)
    pos = _ragged_arange(starts[src], lengths)
    key = dest * n + cols[pos]
    unique, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=vals[pos], minlength=len(unique))
    return unique // n, unique % n, (summed / k2).astype(np.float32)


def _jaccard(rows, cols, vals, nq: int, n: int) -> np.ndarray:
    """[nq, ng] float32 Jaccard distance 1 - s / (2 - s), s = sum_k min(V[i, k], V[j, k]), query i vs gallery j."""
    ng = n - nq
    gallery = rows >= nq  # gallery rows of V, regrouped by column k for the lookup V[:, k]
    by_col = np.argsort(cols[gallery], kind="stable")
    g_rows, g_cols, g_vals = rows[gallery][by_col] - nq, cols[gallery][by_col], vals[gallery][by_col]
    col_start = np.searchsorted(g_cols, np.arange(n + 1))
    q_end = np.searchsorted(rows, nq)  # query rows of V come first
    q_rows, q_cols, q_vals = rows[:q_end], cols[:q_end], vals[:q_end]
    row_start = np.searchsorted(q_rows, np.arange(nq + 1))

    out = np.empty((nq, ng), dtype=np.float32)
    pairs_per_entry = col_start[q_cols + 1] - col_start[q_cols]
    pairs_before = np.concatenate([[0], np.cumsum(np.bincount(q_rows, weights=pairs_per_entry, minlength=nq))])
    max_rows = max(1, _BLOCK_ELEMENTS // 2 // ng)  # bounds the float64 [rows, ng] sums
    a = 0
    while a < nq:  # query blocks of at most max_rows rows and about 4M (query entry, gallery entry) pairs
        b = int(np.searchsorted(pairs_before, pairs_before[a] + (1 << 22), side="right")) - 1
        b = min(max(b, a + 1), a + max_rows, nq)
        lo, hi = row_start[a], row_start[b]
        counts = pairs_per_entry[lo:hi]
        pos = _ragged_arange(col_start[q_cols[lo:hi]], counts)
        shared = np.minimum(np.repeat(q_vals[lo:hi], counts), g_vals[pos])
        flat = np.repeat(q_rows[lo:hi] - a, counts) * ng + g_rows[pos]
        s = np.bincount(flat, weights=shared, minlength=(b - a) * ng).reshape(b - a, ng)
        out[a:b] = 1.0 - s / (2.0 - s)
        a = b
    return out


def _ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l)."""
    total = int(lengths.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def _matrix(value: Any, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name}: expected a real distance matrix, got dtype {value.dtype}")
        value = value.detach().cpu()
        value = (value.float() if value.dtype in (torch.float16, torch.bfloat16) else value).numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected a numeric distance matrix, got dtype {array.dtype}")
    if array.dtype.kind != "f" or array.dtype == np.float16:
        array = array.astype(np.float64 if array.dtype.kind != "f" else np.float32)
    if array.ndim != 2 or 0 in array.shape or (shape is not None and array.shape != shape):
        expected = f"shape {shape}" if shape is not None else "a 2-D [num_query, num_gallery] matrix"
        raise ValueError(f"{name}: expected {expected}, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{name}: contains NaN distances")
    return array
