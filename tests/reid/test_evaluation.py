"""Re-id ranking metrics: hand-worked cases, agreement with a per-query loop written from the Market-1501
protocol, the CUHK03 single-gallery-shot draws, input errors, and pairwise distances."""

import importlib

import numpy as np
import pytest
import torch

from reid.evaluation import evaluate, pairwise_distance


def naive_market(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """One query at a time: stable sort, drop same pid + same camera, skip queries without a match."""
    aps, inps, cmcs = [], [], []
    max_rank = min(max_rank, distmat.shape[1])
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        rel = (g_pids[order][keep] == q_pids[i]).astype(float)
        if not rel.any():
            continue
        hits = np.cumsum(rel)
        ranks = np.flatnonzero(rel) + 1  # 1-based ranks of the correct matches
        aps.append(np.sum(hits[ranks - 1] / ranks) / rel.sum())
        inps.append(rel.sum() / ranks[-1])
        cmcs.append([float(ranks[0] <= k) for k in range(1, max_rank + 1)])
    return np.mean(aps), np.mean(cmcs, 0), np.mean(inps), len(aps)


# Three queries, five gallery images (distance, pid, camera):
#           g0           g1           g2           g3           g4
#   qA  .1 (1, c0)   .2 (2, c1)   .3 (1, c1)   .4 (3, c0)   .5 (1, c2)    qA = pid 1, camera 0
#   qB  pid 4: absent from the gallery, skipped
#   qC  .9           .1           .8           .2           .3            qC = pid 2, camera 0
# qA: g0 is its identity seen by its own camera, dropped -> ranking g1 x, g2 v, g3 x, g4 v:
#     AP = (1/2 + 2/4) / 2 = 0.5, INP = 2 / 4 = 0.5, first match at rank 2.
# qC: ranking g1 v (pid 2, camera 1), then g3 g4 g2 g0: AP = 1, INP = 1, first match at rank 1.
# mAP = mINP = 0.75, CMC = [1/2, 1, 1, 1, 1] over the 2 valid queries.
HAND = dict(
    distmat=np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.3, 0.1, 0.2, 0.5, 0.4], [0.9, 0.1, 0.8, 0.2, 0.3]]),
    q_pids=np.array([1, 4, 2]),
    g_pids=np.array([1, 2, 1, 3, 1]),
    q_camids=np.array([0, 0, 0]),
    g_camids=np.array([0, 1, 1, 0, 2]),
)


def test_hand_worked_case():
    r = evaluate(**HAND, max_rank=50)
    assert r["num_valid_queries"] == 2
    assert r["mAP"] == pytest.approx(0.75) and r["mINP"] == pytest.approx(0.75)
    np.testing.assert_allclose(r["cmc"], [0.5, 1, 1, 1, 1])  # max_rank capped at the gallery size, as torchreid


def test_hand_worked_case_without_the_same_camera_removal():
    # qA seen by camera 3 instead: nothing is dropped, ranking g0 v, g1 x, g2 v, g3 x, g4 v:
    # AP = (1/1 + 2/3 + 3/5) / 3 = 34/45, INP = 3/5; qC unchanged (AP = INP = 1).
    r = evaluate(**{**HAND, "q_camids": np.array([3, 0, 0])}, max_rank=3)
    assert r["mAP"] == pytest.approx((34 / 45 + 1) / 2)
    assert r["mINP"] == pytest.approx((3 / 5 + 1) / 2)
    np.testing.assert_allclose(r["cmc"], [1, 1, 1])


def random_case(seed, ties=False):
    g = np.random.default_rng(seed)
    nq, ng = int(g.integers(1, 40)), int(g.integers(2, 80))
    ids = int(g.integers(2, 10))
    args = dict(
        q_pids=g.integers(0, ids, nq),
        g_pids=g.integers(0, ids, ng),
        q_camids=g.integers(0, 3, nq),
        g_camids=g.integers(0, 3, ng),
    )
    # integer-valued distances make ties between matches and non-matches common
    dist = g.integers(0, 5, (nq, ng)).astype(np.float32) if ties else g.random((nq, ng)).astype(np.float32)
    return dist, args


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_matches_naive_per_query_loop(seed, ties):
    dist, args = random_case(seed, ties)
    max_rank = 10
    try:
        want = naive_market(dist, **args, max_rank=max_rank)
    except (ValueError, ZeroDivisionError):
        pytest.skip("no valid query in this draw")
    if want[3] == 0:
        with pytest.raises(ValueError, match="no query has a match"):
            evaluate(dist, **args, max_rank=max_rank)
        return
    got = evaluate(dist, **args, max_rank=max_rank)
    assert got["mAP"] == pytest.approx(want[0], abs=1e-12)
    np.testing.assert_allclose(got["cmc"], want[1], atol=1e-12)
    assert got["mINP"] == pytest.approx(want[2], abs=1e-12)
    assert got["num_valid_queries"] == want[3]
    # torch tensors, float64 and lists give the same numbers
    as_torch = evaluate(torch.from_numpy(dist), *(torch.from_numpy(a) for a in args.values()), max_rank=max_rank)
    as_lists = evaluate(dist.astype(np.float64).tolist(), *(a.tolist() for a in args.values()), max_rank=max_rank)
    for other in (as_torch, as_lists):
        assert other["mAP"] == got["mAP"] and other["mINP"] == got["mINP"]
        np.testing.assert_array_equal(other["cmc"], got["cmc"])


def test_chunked_evaluation_matches(monkeypatch):
    g = np.random.default_rng(11)
    nq, ng, ids = 120, 300, 25
    args = (g.integers(0, ids, nq), g.integers(0, ids, ng), g.integers(0, 4, nq), g.integers(0, 4, ng))
    dist = g.random((nq, ng))
    whole = evaluate(dist, *args)
    monkeypatch.setattr(
        importlib.import_module("reid.evaluation.ranking"), "_CHUNK_ELEMENTS", 1000
    )  # 3 queries a chunk
    chunked = evaluate(dist, *args)
    assert chunked["mAP"] == pytest.approx(whole["mAP"], abs=1e-12)
    np.testing.assert_allclose(chunked["cmc"], whole["cmc"], atol=1e-12)
    want = naive_market(dist, *args, max_rank=50)
    assert whole["mAP"] == pytest.approx(want[0], abs=1e-12) and whole["mINP"] == pytest.approx(want[2], abs=1e-12)


def test_labels_may_be_strings_and_camera_ids_arbitrary():
    r = evaluate(
        HAND["distmat"],
        np.array(["a", "d", "b"]),
        np.array(["a", "b", "a", "c", "a"]),
        np.array([10, 10, 10]),
        np.array([10, 11, 11, 10, 12]),
    )
    assert r["mAP"] == pytest.approx(0.75)


# ---------------------------------------------------------------- CUHK03 single gallery shot


def test_single_gallery_shot_with_one_image_per_identity_is_the_market_cmc():
    g = np.random.default_rng(3)
    ng = 30
    dist = g.random((12, ng))
    g_pids, g_cams = np.arange(ng), np.ones(ng, dtype=int)
    q_pids, q_cams = g.integers(0, ng, 12), np.zeros(12, dtype=int)
    market = evaluate(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    cuhk = evaluate(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20, single_gallery_shot=True)
    np.testing.assert_allclose(cuhk["cmc"], market["cmc"])
    assert cuhk["mAP"] == market["mAP"] and cuhk["mINP"] == market["mINP"]


def test_single_gallery_shot_draws():
    # Gallery ranked as  p1 (.1)  p2 (.2)  p2 (.3)  p1 (.4)  p3 (.5), all from camera 1; query p1 from camera 0.
    # Each draw keeps one image per identity: p1's image is the first with probability 1/2, otherwise p2's
    # (always ahead of p1's second image) comes first. So E[CMC] = [1/2, 1, 1]; AP uses the full ranking
    # as torchreid does: (1/1 + 2/4) / 2 = 0.75.
    row = [0.1, 0.2, 0.3, 0.4, 0.5]
    args = (np.ones(300, dtype=int), np.array([1, 2, 2, 1, 3]), np.zeros(300, dtype=int), np.ones(5, dtype=int))
    dist = np.tile(row, (300, 1))
    r = evaluate(dist, *args, single_gallery_shot=True, seed=0)
    assert abs(r["cmc"][0] - 0.5) < 0.05  # 3000 draws: standard error 0.009
    np.testing.assert_allclose(r["cmc"][1:], 1.0)
    assert r["mAP"] == pytest.approx(0.75) and r["mINP"] == pytest.approx(0.5)
    again = evaluate(dist, *args, single_gallery_shot=True, seed=0)
    np.testing.assert_array_equal(again["cmc"], r["cmc"])
    other = evaluate(dist[:5], *(a[:5] if len(a) == 300 else a for a in args), single_gallery_shot=True, seed=1)
    assert other["cmc"][0] in np.arange(0, 1.01, 0.02)  # 5 queries x 10 draws


def test_single_gallery_shot_drops_same_camera_images_before_drawing():
    # p1's only other-camera image is ranked 3rd; its same-camera image (ranked 1st) must never be drawn.
    dist = np.array([[0.1, 0.2, 0.3]])
    r = evaluate(dist, [1], [1, 2, 1], [0], [0, 1, 1], single_gallery_shot=True)
    np.testing.assert_allclose(r["cmc"], [0.0, 1.0, 1.0])


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "change, error, words",
    [
        (dict(distmat=np.zeros(5)), ValueError, "distmat: expected a 2-D"),
        (dict(distmat=np.zeros((3, 5, 1))), ValueError, "distmat: expected a 2-D"),
        (dict(distmat=np.zeros((0, 5))), ValueError, "distmat: expected a 2-D"),
        (dict(distmat=np.full((3, 5), "x")), TypeError, "distmat: expected a numeric"),
        (dict(q_pids=np.array([1, 4])), ValueError, "q_pids: expected a 1-D array of length num_query=3"),
        (dict(g_pids=np.ones((5, 1))), ValueError, "g_pids: expected a 1-D array of length num_gallery=5"),
        (dict(g_camids=np.zeros(4)), ValueError, "g_camids: expected a 1-D array"),
        (dict(q_camids=np.array([None, 1, 2])), TypeError, "q_camids: expected integer"),
        (dict(distmat=np.where(np.eye(3, 5) > 0, np.nan, 1.0)), ValueError, "distmat: contains NaN"),
        (dict(q_pids=np.array([7, 8, 9])), ValueError, "no query has a match"),
        (dict(max_rank=0), ValueError, "max_rank: expected an integer >= 1"),
    ],
)
def test_errors_name_the_argument(change, error, words):
    args = {**HAND, **change}
    max_rank = args.pop("max_rank", 50)
    with pytest.raises(error, match=words):
        evaluate(**args, max_rank=max_rank)


# ---------------------------------------------------------------- distances


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_pairwise_distance(metric):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(37, 16, generator=g), torch.randn(23, 16, generator=g)
    if metric == "cosine":
        want = 1 - torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(y, dim=1).T
    else:
        want = torch.cdist(x.double(), y.double()) ** (2 if metric == "sqeuclidean" else 1)
    got = pairwise_distance(x, y, metric, chunk_size=10)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (37, 23)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(pairwise_distance(x.numpy(), y.numpy(), metric, chunk_size=10), got)


def test_pairwise_distance_errors():
    x = torch.zeros(4, 8)
    with pytest.raises(ValueError, match="metric"):
        pairwise_distance(x, x, "manhattan")
    with pytest.raises(ValueError, match="gallery_features: feature size 7"):
        pairwise_distance(x, torch.zeros(3, 7))
    with pytest.raises(ValueError, match="query_features: expected a 2-D"):
        pairwise_distance(torch.zeros(8), x)


def test_bench_smoke(tmp_path, capsys):
    import json

    from reid import bench

    assert bench.main(["--eval-sizes", "150", "--rerank-sizes", "30x120", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "reid-eval.json").read_text())
    assert result["evaluate"][0]["num_query"] == 150 and 0 < result["evaluate"][0]["mAP"] <= 1
    assert result["re_ranking"][0]["num_gallery"] == 120 and result["re_ranking"][0]["re_ranking_ms"] > 0
    assert (tmp_path / "reid-eval.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--rerank-sizes", "10by20", "--out", str(tmp_path / "bad")])
    assert exit_info.value.code == 2 and "QUERYxGALLERY" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
