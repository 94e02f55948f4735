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


def _batches(indices: list[int], batch_size: int) -> list[tuple[int, ...]]:
    return [tuple(indices[i : i + batch_size]) for i in range(0, len(indices), batch_size)]


def _check_pk(indices: list[int], labels, batch_size: int, k: int) -> None:
    for batch in _batches(indices, batch_size):
        counts = Counter(int(labels[i]) for i in batch)
        assert len(batch) == batch_size and len(counts) == batch_size // k and set(counts.values()) == {k}
        assert -1 not in counts


@pytest.mark.timeout(30)
@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("ids, size", [(9, 64), (8, 32), (12, 200), (16, 96)])
def test_pseudo_label_sampler_gives_every_process_the_same_whole_batches_however_few_labels(
    monkeypatch, world, ids, size
):
    """Pseudo-labels that make fewer P x K batches than there are processes (9 clusters of 7 -> 1 batch of 32)
    used to leave a process with no batches, and its epoch loop never ended. Every rank gets
    ceil((size // batch_size) / W) whole batches; together they are the single-process stream of batches (as
    many as all ranks need), dealt out rank, rank + W, ..."""
    from reid.data import sampler as module

    batch_size, k = 32, 4
    labels = np.r_[np.repeat(np.arange(ids), 7), -1]
    per_rank = -(-(size // batch_size) // world)
    monkeypatch.setattr(module, "_world", lambda: (1, 0))
    reference = module.PseudoLabelSampler(per_rank * world * batch_size, batch_size, k, seed=2)
    reference.labels, reference.epoch = labels, 3
    stream = _batches(list(reference), batch_size)
    assert len(stream) == per_rank * world
    for rank in range(world):
        monkeypatch.setattr(module, "_world", lambda rank=rank: (world, rank))
        sampler = module.PseudoLabelSampler(size, batch_size, k, seed=2)
        sampler.labels = labels
        sampler.set_epoch(3)
        mine = list(sampler)
        assert len(mine) == len(sampler) == per_rank * batch_size > 0
        _check_pk(mine, labels, batch_size, k)
        assert _batches(mine, batch_size) == stream[rank::world]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("world", [1, 2, 3])
def test_identity_sampler_pads_with_repeated_batches_when_processes_outnumber_them(monkeypatch, world):
    """Two P x K batches over three processes: every rank still gets one whole batch (the first repeated to fill,
    as torch's DistributedSampler pads), rather than an empty epoch."""
    from reid.data import sampler as module

    pids = np.repeat(np.arange(4), 4)  # 4 chunks of K=4 -> 2 batches of P=2
    monkeypatch.setattr(module, "_world", lambda: (1, 0))
    single = _batches(list(IdentitySampler(pids, 8, 4, seed=1)), 8)
    assert len(single) == 2
    per_rank = -(-len(single) // world)
    padded = [single[i % len(single)] for i in range(per_rank * world)]
    for rank in range(world):
        monkeypatch.setattr(module, "_world", lambda rank=rank: (world, rank))
        sampler = IdentitySampler(pids, 8, 4, seed=1)
        mine = list(sampler)
        assert len(mine) == len(sampler) == per_rank * 8
        _check_pk(mine, pids, 8, 4)
        assert _batches(mine, 8) == padded[rank::world]


@pytest.mark.parametrize("world", [2, 3])
def test_target_sampler_gives_each_process_other_images(monkeypatch, world):
    """Stage 1's unlabelled target batches: each process its own part of one shared stream (all processes drew
    the same images before), every process the same count, and together whole passes over the target set."""
    import reid.data.datamodule as datamodule

    size, per_process = 10, 8
    shards = []
    for rank in range(world):
        monkeypatch.setattr(datamodule, "_world", lambda rank=rank: (world, rank))
        shards.append(list(datamodule._RandomSampler(size, per_process, seed=3)))
    assert [len(shard) for shard in shards] == [per_process] * world
    stream = [i for step in zip(*shards, strict=True) for i in step]  # dealt back in rank order
    for start in range(0, len(stream) - size + 1, size):
        assert sorted(stream[start : start + size]) == list(range(size))  # each pass a permutation
    assert len({tuple(shard) for shard in shards}) == world
    monkeypatch.setattr(datamodule, "_world", lambda: (1, 0))
    assert list(datamodule._RandomSampler(size, per_process * world, seed=3)) == stream  # one process: that stream
