"""ReIDEvaluator: reset / update / compute over batches gives what `evaluate` gives on the whole set at once."""

from __future__ import annotations

import pytest
import torch

from reid.evaluation import ReIDEvaluator, evaluate


def dataset(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pids = torch.arange(6).repeat_interleave(4)  # 6 identities, 4 images each
    camids = torch.arange(4).repeat(6)
    features = torch.nn.functional.normalize(
        torch.randn(6, 8, generator=g)[pids] + 0.7 * torch.randn(24, 8, generator=g)
    )
    is_query = camids == 0
    return features, pids, camids, is_query, torch.arange(24)


def test_batched_updates_score_as_evaluate_on_everything():
    features, pids, camids, is_query, index = dataset()
    evaluator = ReIDEvaluator(max_rank=10)
    for part in torch.arange(24).split(5):
        evaluator.update(features[part], pids[part], camids[part], is_query[part], index[part])
    assert len(evaluator) == 24
    scores = evaluator.compute()
    q, g = is_query, ~is_query
    expected = evaluate(torch.cdist(features[q], features[g]), pids[q], pids[g], camids[q], camids[g], max_rank=10)
    assert scores == pytest.approx({"mAP": expected["mAP"], "rank1": expected["cmc"][0], "mINP": expected["mINP"]})
    assert 0 < scores["mAP"] <= 1 and len(evaluator) == 0  # compute resets


def test_duplicates_by_index_count_once_and_reset_forgets():
    features, pids, camids, is_query, index = dataset(1)
    evaluator = ReIDEvaluator()
    evaluator.update(features, pids, camids, is_query, index)
    once = evaluator.compute()
    evaluator.update(features[:3], pids[:3], camids[:3], is_query[:3], index[:3])
    evaluator.reset()
    evaluator.update(features, pids, camids, is_query, index)
    evaluator.update(features[:4], pids[:4], camids[:4], is_query[:4], index[:4])  # a padded repeat
    assert evaluator.compute() == pytest.approx(once)
    with pytest.raises(ValueError, match="nothing collected"):
        evaluator.compute()


def test_sanity_check_with_queries_only_is_not_scored():
    """Lightning's sanity check runs the first validation batches only; with many queries they hold no gallery
    image. The modules skip scoring then, and still score (and fail loudly) when a real epoch has no gallery."""
    from types import SimpleNamespace

    from reid.engine.evaluated import EvaluatedModule

    class Stub(EvaluatedModule):
        inference_net = property(lambda self: SimpleNamespace(embed=lambda x: x.flatten(1)))

    module = Stub()
    batch = {
        "image": torch.rand(4, 3, 2, 2),
        "pid": torch.tensor([1, 1, 2, 2]),
        "camid": torch.tensor([0, 1, 0, 1]),
        "is_query": torch.ones(4, dtype=torch.bool),
        "index": torch.arange(4),
    }
    for sanity_checking in (True, False):
        module._trainer = SimpleNamespace(sanity_checking=sanity_checking, world_size=1)
        module.on_validation_epoch_start()
        module.validation_step(batch, 0)
        if sanity_checking:
            module.on_validation_epoch_end()
            assert len(module.evaluator) == 0
        else:
            with pytest.raises(ValueError, match="distmat"):
                module.on_validation_epoch_end()
