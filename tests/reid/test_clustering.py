"""Chunked torch k-means: exact recovery of separated blobs, agreement with a naive full-matrix Lloyd, chunk-size
invariance, determinism, empty clusters, errors, and (with CUDA) bounded memory."""

import pytest
import torch

from reid.clustering import kmeans, kmeans_plusplus


def blobs(k=12, per=30, dim=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g, dtype=dtype) * 20
    truth = torch.arange(k).repeat_interleave(per)
    return centres[truth] + torch.randn(k * per, dim, generator=g, dtype=dtype), truth


def same_partition(a, b):
    """Equal up to renaming the clusters: the pairs (a_i, b_i) form a bijection."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def naive_lloyd(x, centroids, iters, tol):
    """The same rules as reid.clustering.kmeans, on the full N x K distance matrix (no empty clusters here)."""
    threshold = tol * x.var(0, unbiased=False).mean()
    labels = torch.cdist(x, centroids).argmin(1)
    for _ in range(iters):
        new = torch.stack([x[labels == j].mean(0) for j in range(len(centroids))])
        shift = (new - centroids).pow(2).sum()
        centroids, previous = new, labels
        labels = torch.cdist(x, centroids).argmin(1)
        if shift <= threshold or torch.equal(labels, previous):
            break
    return labels, centroids


def test_separated_blobs_are_recovered_exactly():
    x, truth = blobs()
    labels, centroids = kmeans(x, 12, seed=0)
    assert labels.dtype == torch.long and labels.shape == truth.shape
    assert centroids.shape == (12, 16)
    assert same_partition(labels, truth)


def test_matches_naive_lloyd_from_the_same_init():
    x, _ = blobs(k=6, per=40, dim=8, seed=1, dtype=torch.float64)
    x = torch.cat([x, torch.randn(60, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 30])
    init = kmeans_plusplus(x, 10, seed=3)
    labels, centroids = kmeans(x, 10, init=init, iters=50, tol=0.0)
    expected_labels, expected_centroids = naive_lloyd(x, init, iters=50, tol=0.0)
    assert torch.equal(labels, expected_labels)
    torch.testing.assert_close(centroids, expected_centroids)


def test_chunk_size_does_not_change_the_result():
    x, _ = blobs(k=8, per=25, dim=12, seed=2, dtype=torch.float64)
    x = x + torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 10  # overlap
    reference = kmeans(x, 8, seed=4, chunk_size=4096)
    for chunk_size in (3, 7, 64):
        labels, centroids = kmeans(x, 8, seed=4, chunk_size=chunk_size)
        assert torch.equal(labels, reference[0])
        torch.testing.assert_close(centroids, reference[1])


def test_deterministic_for_a_seed():
    x = torch.randn(300, 10, generator=torch.Generator().manual_seed(3))
    a, b = kmeans(x, 9, seed=7), kmeans(x, 9, seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_empty_cluster_is_reseeded():
    x, truth = blobs(k=4, per=20, dim=4, seed=5)
    init = torch.cat([x[truth == j][:1] for j in range(4)] + [torch.full((1, 4), 1e4)])  # one centre far from all
    labels, _ = kmeans(x, 5, init=init)
    assert torch.bincount(labels, minlength=5).min() > 0


def test_k_equal_n_and_dtypes():
    x = torch.randn(5, 3, dtype=torch.float64)
    labels, centroids = kmeans(x, 5)
    assert sorted(labels.tolist()) == [0, 1, 2, 3, 4] and centroids.dtype == torch.float64
    assert kmeans(x.half(), 2)[1].dtype == torch.float32


def test_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="k: expected 1 <= k <= N = 4, got 5"):
        kmeans(x, 5)
    with pytest.raises(ValueError, match="features"):
        kmeans(torch.randn(4), 2)
    with pytest.raises(ValueError, match="init"):
        kmeans(x, 2, init=torch.randn(3, 3))
    with pytest.raises(ValueError, match="chunk_size"):
        kmeans(x, 2, chunk_size=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_memory_stays_bounded():
    x, truth = blobs(k=12, per=30)
    labels, _ = kmeans(x.cuda(), 12, seed=0)
    assert labels.device.type == "cuda" and torch.equal(labels.cpu(), kmeans(x, 12, seed=0)[0])

    n, k, dim, chunk = 200_000, 256, 32, 1024
    big = torch.randn(n, dim, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    kmeans(big, k, iters=3, chunk_size=chunk)
    extra = torch.cuda.max_memory_allocated() - before
    full_matrix = n * k * 4
    assert extra < full_matrix / 4, (
        f"peak extra {extra / 2**20:.1f} MiB vs a full N x K matrix {full_matrix / 2**20} MiB"
    )
