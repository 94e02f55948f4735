"""P x K identity sampling: batch structure, exact length, determinism per (seed, epoch), errors."""

from collections import Counter

import numpy as np
import pytest

from reid.data import IdentitySampler


def _pids(seed: int = 0, ids: int = 30) -> list[int]:
    rng = np.random.default_rng(seed)
    pids = [pid for pid in range(ids) for _ in range(int(rng.integers(1, 12)))]  # some ids have < K images
    return rng.permutation(pids).tolist()


@pytest.mark.parametrize("batch_size,k", [(16, 4), (12, 2), (8, 8)])
def test_batches_hold_p_identities_times_k(batch_size, k):
    pids = _pids()
    sampler = IdentitySampler(pids, batch_size, num_instances=k, seed=1)
    indices = list(sampler)
    assert len(indices) == len(sampler) and len(indices) % batch_size == 0 and len(indices) > 0
    for start in range(0, len(indices), batch_size):
        batch = [pids[i] for i in indices[start : start + batch_size]]
        counts = Counter(batch)
        assert len(counts) == batch_size // k and set(counts.values()) == {k}
        assert all(batch[j : j + k] == [batch[j]] * k for j in range(0, batch_size, k))


def test_length_matches_torchreid_estimate_and_covers_images():
    pids = _pids()
    sampler = IdentitySampler(pids, 16, 4)
    counts = Counter(pids)
    chunks = sum(max(n, 4) // 4 for n in counts.values())
    assert len(sampler) == chunks // 4 * 16
    for epoch in range(3):  # exact on every epoch, whatever the random draws
        sampler.set_epoch(epoch)
        assert len(list(sampler)) == len(sampler)
    seen = set(list(sampler))
    assert len(seen) > 0.7 * len(pids)


def test_deterministic_per_seed_and_epoch():
    pids = _pids()
    a, b = IdentitySampler(pids, 16, 4, seed=5), IdentitySampler(pids, 16, 4, seed=5)
    assert list(a) == list(b) == list(a)
    a.set_epoch(1)
    first = list(a)
    assert first != list(b)
    b.set_epoch(1)
    assert first == list(b)
    assert list(IdentitySampler(pids, 16, 4, seed=6)) != list(IdentitySampler(pids, 16, 4, seed=5))


def test_small_identities_are_sampled_with_replacement_and_negative_labels_skipped():
    pids = [0, 1, 1, 2, 2, 2, -1, -1, -1, -1]
    sampler = IdentitySampler(pids, 12, 4)
    indices = list(sampler)
    assert len(indices) == 12
    assert {pids[i] for i in indices} == {0, 1, 2}
    assert indices.count(0) == 4


def test_errors():
    with pytest.raises(ValueError, match="batch_size"):
        IdentitySampler([0, 1, 2, 3], 10, 4)
    with pytest.raises(ValueError, match="num_instances"):
        IdentitySampler([0, 1, 2, 3], 8, 0)
    with pytest.raises(ValueError, match="3 identities, fewer than the 4"):
        IdentitySampler([0, 1, 2, 2], 16, 4)
    with pytest.raises(ValueError, match="0 identities"):
        IdentitySampler([-1, -1], 4, 4)


def test_identity_sampler_shards_whole_batches_across_processes(monkeypatch):
    """Under torch.distributed each process keeps whole P x K batches, disjoint across ranks, together the
    single-process epoch's batches (so the Trainer runs with use_distributed_sampler=False)."""
    from reid.data import sampler as module

    pids = np.repeat(np.arange(12), 4)
    single = list(IdentitySampler(pids, batch_size=8, num_instances=4, seed=3))
    batches = [tuple(single[i : i + 8]) for i in range(0, len(single), 8)]
    shards = []
    for rank in range(2):
        monkeypatch.setattr(module, "_world", lambda rank=rank: (2, rank))
        s = IdentitySampler(pids, batch_size=8, num_instances=4, seed=3)
        mine = list(s)
        assert len(mine) == len(s) == len(batches) // 2 * 8
        shards.append([tuple(mine[i : i + 8]) for i in range(0, len(mine), 8)])
    assert shards[0] == batches[0::2][: len(shards[0])] and shards[1] == batches[1::2][: len(shards[1])]
    assert not set(shards[0]) & set(shards[1])
