"""The helpers stage 2 clusters with: per-camera standardisation, k-reciprocal neighbour expansion, purity by
identity and by camera."""

from __future__ import annotations

import pytest
import torch

from reid.clustering import (
    camera_chance,
    camera_normalize,
    camera_purity,
    cluster_purity,
    condition_features,
    reciprocal_expansion,
)
from reid.data import train_transform


def test_camera_normalize_removes_a_per_camera_offset():
    torch.manual_seed(0)
    identity = torch.randn(8, 16).repeat(2, 1)  # 8 identities, each seen by cameras 0 and 1
    cams = torch.tensor([0] * 8 + [1] * 8)
    shifted = identity + torch.where(cams[:, None] == 0, 5.0, -5.0) * torch.ones(16)  # a strong camera cast
    out = camera_normalize(shifted, cams)
    assert torch.allclose(out.norm(dim=1), torch.ones(16), atol=1e-5)
    assert torch.allclose(out[:8], out[8:], atol=1e-5)  # the same identity in both cameras lands on one point
    nearest = torch.cdist(out, out).fill_diagonal_(float("inf")).argmin(dim=1)
    assert torch.equal(nearest, torch.arange(16).roll(8))


def test_reciprocal_expansion_averages_mutual_neighbours_only():
    x = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, -0.2]]))
    out = reciprocal_expansion(x, k=1)
    assert torch.allclose(out[0], out[1]) and torch.allclose(out[2], out[3])  # mutual pairs merge
    assert torch.allclose(out[4], x[4])  # its nearest neighbour has another nearest: left alone
    assert torch.allclose(out.norm(dim=1), torch.ones(5))
    assert torch.equal(reciprocal_expansion(x[:1], k=3), x[:1])
    chunked = reciprocal_expansion(x, k=2, chunk_size=2)
    assert torch.allclose(chunked, reciprocal_expansion(x, k=2))


def naive_expansion(x, k, cams=None):
    """reciprocal_expansion written out image by image: the k nearest (other-camera with cams) by sorted
    distance, kept when the image is among that neighbour's own k nearest, summed with the image, normalised."""
    n = len(x)

    def knn(i):
        others = [j for j in range(n) if j != i and (cams is None or cams[j] != cams[i])]
        return sorted(others, key=lambda j: float((x[i] - x[j]).norm()))[:k]

    near = [knn(i) for i in range(n)]
    out = [x[i] + sum((x[j] for j in near[i] if i in near[j]), torch.zeros_like(x[i])) for i in range(n)]
    return torch.nn.functional.normalize(torch.stack(out), dim=1)


def test_cross_camera_expansion_matches_a_naive_loop_and_skips_own_camera():
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.normalize(torch.randn(30, 8, generator=g, dtype=torch.float64), dim=1)
    cams = torch.randint(0, 3, (30,), generator=g)
    for k in (1, 3, 5):
        torch.testing.assert_close(reciprocal_expansion(x, k, cams=cams), naive_expansion(x, k, cams))
        torch.testing.assert_close(reciprocal_expansion(x, k, cams=cams, chunk_size=4), naive_expansion(x, k, cams))
        torch.testing.assert_close(reciprocal_expansion(x, k), naive_expansion(x, k))
    # two identities, each seen by two cameras with a strong camera offset: within a camera the two identities are
    # each other's nearest, so plain expansion merges across identities; across cameras it merges each identity
    a, b, shift = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.8, 0.6, 0.0]), torch.tensor([0.0, 0.0, 3.0])
    y = torch.nn.functional.normalize(torch.stack([a, b, a + shift, b + shift]), dim=1)
    two_cams = torch.tensor([0, 0, 1, 1])
    plain, cross = reciprocal_expansion(y, 1), reciprocal_expansion(y, 1, cams=two_cams)
    assert torch.allclose(plain[0], plain[1])  # identities a and b merged in camera 0
    assert torch.allclose(cross[0], cross[2]) and torch.allclose(cross[1], cross[3])  # a with a, b with b
    assert torch.equal(reciprocal_expansion(y, 1, cams=torch.zeros(4, dtype=torch.long)), y)  # one camera: no pairs
    with pytest.raises(ValueError, match="cams"):
        reciprocal_expansion(y, 1, cams=two_cams[:3])


def test_camera_normalize_without_scale_only_centres_each_camera():
    g = torch.Generator().manual_seed(1)
    x, cams = torch.randn(12, 5, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2] * 4)
    expected = x.clone()
    for c in range(3):
        expected[cams == c] -= x[cams == c].mean(0)
    torch.testing.assert_close(camera_normalize(x, cams, scale=False), torch.nn.functional.normalize(expected, dim=1))
    scaled = expected.clone()
    for c in range(3):
        scaled[cams == c] /= x[cams == c].std(0, unbiased=False) + 1e-6
    torch.testing.assert_close(camera_normalize(x, cams), torch.nn.functional.normalize(scaled, dim=1))
    with pytest.raises(ValueError, match="cams"):
        camera_normalize(x, cams[:5])


def test_condition_features_chains_the_options_in_order():
    g = torch.Generator().manual_seed(2)
    x, cams = torch.randn(20, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (20,), generator=g)
    assert torch.equal(condition_features(x, cams), x)
    torch.testing.assert_close(condition_features(x, cams, normalize=True), camera_normalize(x, cams))
    normalized = camera_normalize(x, cams)
    torch.testing.assert_close(condition_features(x, cams, True, 3), naive_expansion(normalized, 3))
    torch.testing.assert_close(condition_features(x, cams, True, 3, True), naive_expansion(normalized, 3, cams))
    with pytest.raises(ValueError, match="cross_camera"):
        condition_features(x, cams, cross_camera=True)
    with pytest.raises(ValueError, match="expansion"):
        condition_features(x, cams, expansion=-2)


def test_cluster_purity():
    truth = torch.tensor([0, 0, 1, 1, 2, 2])
    assert cluster_purity(torch.tensor([5, 5, 1, 1, 0, 0]), truth) == 1.0
    assert cluster_purity(torch.zeros(6, dtype=torch.long), truth) == 2 / 6
    assert cluster_purity(torch.tensor([0, 1, 0, 1, 0, 1]), truth) == 2 / 6


def test_camera_purity_by_hand():
    # cluster 7: cameras 1, 1, 2 -> 2/3; cluster 3: cameras 2, 2 -> 1; cluster 0: cameras 1, 2, 3, 3 -> 1/2
    labels = torch.tensor([7, 7, 7, 3, 3, 0, 0, 0, 0, -1])
    cams = torch.tensor([1, 1, 2, 2, 2, 1, 2, 3, 3, 1])
    assert camera_purity(labels, cams) == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)  # the noise item is left out
    assert camera_chance(cams) == pytest.approx(4 / 10)  # camera 2: 4 of the 10 items
    # clusters that are the identities, each seen once by each of 3 cameras: as camera-pure as chance allows
    ids = torch.arange(4).repeat_interleave(3)
    by_camera = torch.tensor([0, 1, 2]).repeat(4)
    assert camera_purity(ids, by_camera) == pytest.approx(1 / 3) == camera_chance(by_camera)
    assert camera_purity(by_camera, by_camera) == 1.0  # clusters that are the cameras
    with pytest.raises(ValueError, match="labels, cams"):
        camera_purity(labels, cams[:3])
    with pytest.raises(ValueError, match="noise"):
        camera_purity(torch.full((3,), -1), cams[:3])


def test_style_augment_changes_colours_not_shapes():
    """On a uniform grey image the plain transform's centre pixel is the grey (or 0 where randomly erased) every
    time; the photometric augmentation makes it vary from draw to draw."""
    torch.manual_seed(0)
    image = torch.full((3, 64, 32), 128, dtype=torch.uint8)
    plain, styled = train_transform(64, 32), train_transform(64, 32, style_augment=True)
    assert plain(image).shape == styled(image).shape == (3, 64, 32)
    centres = {name: {tuple(t(image)[:, 32, 16].mul(1e3).round().tolist()) for _ in range(40)}
               for name, t in (("plain", plain), ("styled", styled))}  # fmt: skip
    assert len(centres["plain"]) <= 2 and len(centres["styled"]) > 10
