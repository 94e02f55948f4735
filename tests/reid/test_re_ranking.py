"""k-reciprocal re-ranking: against a plain loop implementation written from the paper's definitions, plus
its limits (lambda = 1), shapes, errors, and a case where re-ranking must help."""

import importlib

import numpy as np
import pytest
import torch

from reid.evaluation import evaluate, pairwise_distance
from reid.re_ranking import re_ranking


def naive_re_ranking(q_g, q_q, g_g, k1, k2, lam):
    """One image at a time, with Python sets: the definitions of Zhong et al. (CVPR 2017) with the shared
    implementation's conventions (squared distances scaled by column max, round(k1/2), "> 2/3", k2 == 1 skips)."""
    nq = len(q_q)
    d = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float64) ** 2
    d = (d.astype(np.float32) / d.astype(np.float32).max(0)).T
    n = len(d)
    rank = [list(np.argsort(d[i], kind="stable")) for i in range(n)]

    def reciprocal(i, k):
        return {j for j in rank[i][: k + 1] if i in rank[j][: k + 1]}

    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = set(r)
        for c in r:
            half = reciprocal(c, int(np.around(k1 / 2)))
            if len(half & r) > 2 / 3 * len(half):
                expanded |= half
        cols = sorted(expanded)
        w = np.exp(-d[i, cols].astype(np.float64))
        v[i, cols] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i][:k2]].mean(0) for i in range(n)])
    final = np.zeros((nq, n - nq))
    for i in range(nq):
        for j in range(nq, n):
            s = sum(min(v[i, k], v[j, k]) for k in range(n))
            final[i, j - nq] = (1 - s / (2 - s)) * (1 - lam) + d[i, j] * lam
    return final


def features(seed, n, dim=8, ids=6):
    g = np.random.default_rng(seed)
    pid = g.integers(0, ids, n)
    return (g.normal(size=(ids, dim))[pid] + 0.8 * g.normal(size=(n, dim))).astype(np.float32), pid


def blocks(x, nq, metric="sqeuclidean"):
    q, g = x[:nq], x[nq:]
    return pairwise_distance(q, g, metric), pairwise_distance(q, q, metric), pairwise_distance(g, g, metric)


@pytest.mark.parametrize(
    "seed, nq, ng, k1, k2, lam",
    [
        (0, 5, 20, 4, 3, 0.3),
        (1, 8, 17, 6, 1, 0.5),
        (2, 3, 30, 5, 2, 0.0),
        (3, 10, 12, 3, 4, 0.3),
        (4, 6, 9, 20, 6, 0.3),
    ],
)
def test_matches_naive_loops(seed, nq, ng, k1, k2, lam):
    x, _ = features(seed, nq + ng)
    q_g, q_q, g_g = blocks(x, nq)
    got = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    want = naive_re_ranking(q_g, q_q, g_g, k1, k2, lam)
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)


def test_ties_are_ranked_by_index_like_a_stable_sort():
    g = np.random.default_rng(10)
    x = g.integers(0, 3, (24, 3)).astype(np.float32)  # many duplicated points and equal distances
    q_g, q_q, g_g = blocks(x, 6)
    got = re_ranking(q_g, q_q, g_g, k1=4, k2=3)
    np.testing.assert_allclose(got, naive_re_ranking(q_g, q_q, g_g, 4, 3, 0.3), atol=2e-6, rtol=1e-5)


def test_streaming_blocks_give_the_same_result(monkeypatch):
    x, _ = features(5, 60)
    q_g, q_q, g_g = blocks(x, 15, "euclidean")
    whole = re_ranking(q_g, q_q, g_g, k1=6, k2=3)
    monkeypatch.setattr(
        importlib.import_module("reid.re_ranking"), "_BLOCK_ELEMENTS", 200
    )  # a few rows per block, and queries split for Jaccard
    np.testing.assert_array_equal(re_ranking(q_g, q_q, g_g, k1=6, k2=3), whole)


def test_lambda_one_keeps_the_original_order():
    x, _ = features(6, 50)
    q_g, q_q, g_g = blocks(x, 10, "euclidean")
    out = re_ranking(q_g, q_q, g_g, lambda_value=1.0)
    np.testing.assert_array_equal(np.argsort(out, 1, kind="stable"), np.argsort(q_g, 1, kind="stable"))
    # and the values are the squared distances scaled per query row (by the column max of the joint matrix)
    scale = np.maximum((q_q**2).max(0), (q_g**2).max(1))
    np.testing.assert_allclose(out, q_g**2 / scale[:, None], rtol=1e-6)


def test_shape_dtype_and_inputs():
    x, _ = features(7, 30)
    q_g, q_q, g_g = blocks(x, 7)
    out = re_ranking(q_g, q_q, g_g)
    assert out.shape == (7, 23) and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all() and (out <= 1 + 1e-6).all()
    as_tensors = re_ranking(torch.from_numpy(q_g), torch.from_numpy(q_q), torch.from_numpy(g_g))
    np.testing.assert_array_equal(as_tensors, out)
    as_float64 = re_ranking(q_g.astype(np.float64), q_q.astype(np.float64), g_g.astype(np.float64))
    np.testing.assert_allclose(as_float64, out, atol=1e-6)


def test_improves_map_when_neighbours_of_neighbours_agree():
    # Each identity is a chain of images along a curve: the far end of a chain is closer to another identity's
    # centre than to its own query, but is reachable through k-reciprocal neighbours.
    g = np.random.default_rng(8)
    ids, per_id, dim = 12, 10, 16
    centres = g.normal(size=(ids, dim)) * 3
    steps = g.normal(size=(ids, dim))
    t = np.linspace(0, 1, per_id)
    x = (centres[:, None, :] + 6 * t[None, :, None] * steps[:, None, :]).reshape(-1, dim)
    x = (x + 0.3 * g.normal(size=x.shape)).astype(np.float32)
    pid = np.repeat(np.arange(ids), per_id)
    cam = np.tile(np.arange(per_id), ids)
    is_query = cam == 0
    q, gal = x[is_query], x[~is_query]
    q_g, q_q, g_g = (pairwise_distance(a, b, "sqeuclidean") for a, b in ((q, gal), (q, q), (gal, gal)))
    args = (pid[is_query], pid[~is_query], cam[is_query], cam[~is_query])
    before = evaluate(q_g, *args)["mAP"]
    after = evaluate(re_ranking(q_g, q_q, g_g, k1=5, k2=3, lambda_value=0.3), *args)["mAP"]
    assert after > before + 0.05, (before, after)


@pytest.mark.parametrize(
    "change, error, words",
    [
        (lambda a: {**a, "q_g": a["q_g"][0]}, ValueError, "q_g: expected a 2-D"),
        (lambda a: {**a, "q_q": a["q_q"][:-1]}, ValueError, "q_q: expected shape (4, 4)"),
        (lambda a: {**a, "g_g": a["q_q"]}, ValueError, "g_g: expected shape (6, 6)"),
        (lambda a: {**a, "q_g": a["q_g"].astype(str)}, TypeError, "q_g: expected a numeric"),
        (lambda a: {**a, "k1": 0}, ValueError, "k1: expected an integer >= 1"),
        (lambda a: {**a, "k2": 2.5}, ValueError, "k2: expected an integer >= 1"),
        (lambda a: {**a, "lambda_value": 1.5}, ValueError, "lambda_value"),
        (lambda a: {**a, "g_g": np.full((6, 6), np.nan)}, ValueError, "NaN"),
        (lambda a: {**a, "q_g": a["q_g"] * 0, "q_q": a["q_q"] * 0}, ValueError, "nonzero distance"),
    ],
)
def test_errors_name_the_argument(change, error, words):
    x, _ = features(9, 10)
    q_g, q_q, g_g = blocks(x, 4)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        re_ranking(**change({"q_g": q_g, "q_q": q_q, "g_g": g_g}))
