"""The data-driven number of clusters: the single-set k-reciprocal Jaccard distance against the plain-loop
re-ranking reference, DBSCAN against a textbook loop, the k-NN radius against a sort, and the estimate of K on
Gaussian blobs with half and twice the tuned pair's K = 40 identities (where that fixed K would be far off)."""

import numpy as np
import pytest
import torch

from reid.cluster_count import dbscan, estimate_num_clusters, knn_radius
from reid.evaluation import pairwise_distance
from reid.re_ranking import jaccard_distance
from tests.reid.test_re_ranking import features, naive_re_ranking

TUNED_K = 40  # the K the tiny stage-2 config fixed for the tuned pair before it estimated K


def blobs(ids: int, seed: int, dim: int = 64, spread: float = 1.0) -> tuple[torch.Tensor, np.ndarray]:
    """L2-normalised Gaussian blobs with 4..16 points each (unequal, as images per identity are)."""
    g = np.random.default_rng(seed)
    pid = np.repeat(np.arange(ids), g.integers(4, 17, ids))
    x = g.normal(size=(ids, dim))[pid] + spread * g.normal(size=(len(pid), dim))
    return torch.nn.functional.normalize(torch.tensor(x, dtype=torch.float32), dim=1), pid


@pytest.mark.parametrize("seed, n, k1, k2", [(0, 25, 4, 3), (1, 30, 6, 1), (2, 20, 20, 6)])
def test_jaccard_distance_matches_the_re_ranking_reference(seed, n, k1, k2):
    x, _ = features(seed, n)
    d = pairwise_distance(x, x, "sqeuclidean")
    got = jaccard_distance(d, k1=k1, k2=k2)
    m = n // 3  # the reference ranks the same joint matrix split into query and gallery blocks
    want = naive_re_ranking(d[:m, m:], d[:m, :m], d[m:, m:], k1, k2, 0.0)
    np.testing.assert_allclose(got[:m, m:], want, atol=2e-6)
    np.testing.assert_allclose(got, got.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(got), 0, atol=1e-6)


def test_jaccard_distance_rejects_bad_input():
    with pytest.raises(ValueError, match="dist: expected a square"):
        jaccard_distance(np.ones((3, 4)))
    with pytest.raises(ValueError, match="k1"):
        jaccard_distance(np.ones((3, 3)), k1=0)


def naive_dbscan(d, eps, min_samples):
    """Textbook DBSCAN: grow a cluster from each unvisited core point through the eps-neighbourhoods of core
    points; a border point goes to the first cluster that reaches it."""
    n = len(d)
    neighbours = [set(np.flatnonzero(d[i] <= eps)) | {i} for i in range(n)]
    core = [len(s) >= min_samples for s in neighbours]
    labels, cluster = [-1] * n, 0
    for i in range(n):
        if not core[i] or labels[i] >= 0:
            continue
        stack, labels[i] = [i], cluster
        while stack:
            j = stack.pop()
            for m in neighbours[j]:
                if labels[m] < 0:
                    labels[m] = cluster
                    if core[m]:
                        stack.append(m)
        cluster += 1
    return np.array(labels), np.array(core)


def test_dbscan_on_a_line_by_hand():
    x = np.array([0.0, 1.0, 2.0, 3.5, 10.0, 11.0, 12.0, 30.0])
    d = np.abs(x[:, None] - x[None])
    labels = dbscan(d, eps=1.0, min_samples=3)
    # cores: 1 (0, 1, 2) and 11 (10, 11, 12); 0, 2, 10, 12 are borders; 3.5 and 30 are noise
    np.testing.assert_array_equal(labels, [0, 0, 0, -1, 1, 1, 1, -1])
    np.testing.assert_array_equal(dbscan(d, eps=1.5, min_samples=3), [0, 0, 0, 0, 1, 1, 1, -1])
    np.testing.assert_array_equal(dbscan(d, eps=0.5, min_samples=1), np.arange(8))  # every point its own core


@pytest.mark.parametrize("seed", range(4))
def test_dbscan_matches_the_textbook_loop(seed):
    g = np.random.default_rng(seed)
    x = np.concatenate([g.normal(c, 0.4, (15, 2)) for c in ((0, 0), (4, 0), (0, 4))] + [g.uniform(-3, 7, (10, 2))])
    d = np.asarray(pairwise_distance(x, x, "euclidean"), dtype=np.float64)
    got = dbscan(d, eps=0.6, min_samples=4)
    want, core = naive_dbscan(d, 0.6, 4)
    np.testing.assert_array_equal(got[core], want[core])  # core points: the same clusters in the same order
    np.testing.assert_array_equal(got < 0, want < 0)  # the same noise
    for i in np.flatnonzero(~core & (got >= 0)):  # a border point sits within eps of a core point of its cluster
        assert (d[i, core & (got == got[i])] <= 0.6).any()


def test_dbscan_rejects_bad_input():
    with pytest.raises(ValueError, match="dist: expected a non-empty square"):
        dbscan(np.ones((2, 3)), 0.5, 2)
    with pytest.raises(ValueError, match="eps"):
        dbscan(np.ones((2, 2)), -1, 2)
    with pytest.raises(ValueError, match="min_samples"):
        dbscan(np.ones((2, 2)), 0.5, 0)
    with pytest.raises(ValueError, match="NaN"):
        dbscan(np.full((2, 2), np.nan), 0.5, 2)


def test_knn_radius_is_a_quantile_of_sorted_rows():
    g = np.random.default_rng(3)
    x = g.normal(size=(40, 5))
    d = np.asarray(pairwise_distance(x, x, "euclidean"), dtype=np.float64)
    for k, q in ((1, 0.5), (3, 0.9), (39, 0.0)):
        kth = [np.sort(np.delete(d[i], i))[k - 1] for i in range(40)]
        assert knn_radius(d, k, q) == pytest.approx(np.quantile(kth, q))
    with pytest.raises(ValueError, match="k: expected"):
        knn_radius(d, 40)
    with pytest.raises(ValueError, match="quantile"):
        knn_radius(d, 2, 1.5)


@pytest.mark.parametrize("ids", [TUNED_K // 2, TUNED_K * 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_estimate_is_within_a_quarter_of_the_true_identity_count(ids, seed):
    x, _ = blobs(ids, seed)
    k, found = estimate_num_clusters(x)
    assert abs(k - ids) <= 0.25 * ids, (k, ids, found)
    assert abs(TUNED_K - ids) > 0.25 * ids  # the fixed default would not be
    assert 0 <= found["noise"] < 0.5 and 0 < found["eps"] < 1


def test_estimate_rejects_bad_input():
    with pytest.raises(ValueError, match="features"):
        estimate_num_clusters(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="features"):
        estimate_num_clusters(np.zeros((30, 4)))
