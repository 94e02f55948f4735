"""The colour-histogram baseline against a naive per-pixel count, and evaluate_folder against evaluate."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from reid import evaluate
from reid.baselines import colour_histograms, histogram_embedder
from reid.evaluation import evaluate_folder


def _naive(image: np.ndarray, stripes: int, bins: int) -> np.ndarray:
    """Per pixel: its stripe, its R, G, B and colorsys H, S, V, each counted into one of `bins` bins."""
    _, h, w = image.shape
    counts = np.zeros((stripes, 6, bins))
    for y in range(h):
        for x in range(w):
            r, g, b = image[:, y, x]
            for c, value in enumerate((r, g, b, *colorsys.rgb_to_hsv(r, g, b))):
                counts[y * stripes // h, c, min(int(value * bins), bins - 1)] += 1
    hist = np.sqrt(counts / counts.sum(axis=2, keepdims=True)).ravel()
    return hist / np.linalg.norm(hist)


def test_histograms_match_a_naive_count():
    torch.manual_seed(0)
    # values away from bin edges, so float32 rounding in the HSV conversion cannot move a pixel across one
    images = (torch.randint(0, 8, (3, 3, 12, 5)).float() + 0.5) / 8
    ours = colour_histograms(images, stripes=3, bins=8)
    for image, row in zip(images.double().numpy(), ours, strict=True):
        np.testing.assert_allclose(row.numpy(), _naive(image, 3, 8), atol=1e-5)
    # the Euclidean distance between descriptors is the Hellinger distance of their histograms
    assert torch.allclose(ours.norm(dim=1), torch.ones(3))


def test_histograms_reject_bad_input():
    with pytest.raises(ValueError, match=r"images: expected a float \[N, 3, H, W\]"):
        colour_histograms(torch.rand(3, 12, 5))
    with pytest.raises(ValueError, match="images"):
        colour_histograms(torch.randint(0, 255, (1, 3, 12, 5), dtype=torch.uint8))
    with pytest.raises(ValueError, match="stripes"):
        colour_histograms(torch.rand(1, 3, 4, 5), stripes=6)


def test_evaluate_folder_scores_the_test_split(tmp_path):
    from reid.data import read_dataset
    from reid.data.synthetic import generate

    generate(tmp_path, identities=8, cameras=2, images_per_camera=2, seed=0)
    root = tmp_path / "source"
    embed = histogram_embedder()
    scores = evaluate_folder(embed, root)
    splits = read_dataset("market1501", root)
    q, g = splits.query, splits.gallery
    features = embed([s.path for s in q + g])
    expected = evaluate(
        torch.cdist(features[: len(q)], features[len(q) :]),
        np.array([s.pid for s in q]),
        np.array([s.pid for s in g]),
        np.array([s.camid for s in q]),
        np.array([s.camid for s in g]),
    )
    assert scores["mAP"] == pytest.approx(expected["mAP"]) and scores["rank1"] == pytest.approx(expected["cmc"][0])
    assert 0 < scores["mAP"] <= 1
