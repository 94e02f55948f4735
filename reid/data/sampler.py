"""P x K identity sampling for metric learning: every batch holds P identities with K images each, so each
anchor has positives and negatives for the batch-hard triplet loss (torchreid's RandomIdentitySampler)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class IdentitySampler(Sampler[int]):
    """Yields dataset indices; each consecutive `batch_size` chunk holds batch_size / num_instances
    identities x num_instances images. An identity with fewer than num_instances images is sampled with
    replacement; a negative label (an unlabelled / outlier sample) is never drawn.

    One epoch visits each identity's images in chunks of K (as torchreid) and lasts
    (sum over ids of max(n_id, K) // K) // P batches exactly; identities used up before the epoch ends are
    reshuffled and drawn again. The order depends only on (seed, epoch): call set_epoch each epoch
    (Lightning does so for the training loader). Under torch.distributed each of the W processes yields
    ceil(num_batches / W) of those batches, whole (the first batches repeated to fill when W does not divide them).
    """

    def __init__(self, pids: Sequence[int], batch_size: int, num_instances: int = 4, seed: int = 0):
        if num_instances < 1:
            raise ValueError(f"num_instances: expected >= 1, got {num_instances}")
        if batch_size < 1 or batch_size % num_instances:
            raise ValueError(
                f"batch_size: expected a positive multiple of num_instances={num_instances}, got {batch_size}"
            )
        labels = np.asarray(pids, dtype=np.int64)
        if labels.ndim != 1:
            raise ValueError(f"pids: expected a flat sequence of ints, got shape {labels.shape}")
        order = np.argsort(labels, kind="stable")
        order = order[labels[order] >= 0]
        _, starts = np.unique(labels[order], return_index=True)
        self.groups = np.split(order, starts[1:]) if len(order) else []
        self.batch_size, self.num_instances, self.seed, self.epoch = batch_size, num_instances, seed, 0
        self.ids_per_batch = batch_size // num_instances
        if len(self.groups) < self.ids_per_batch:
            raise ValueError(
                f"pids: {len(self.groups)} identities, fewer than the {self.ids_per_batch} a batch of {batch_size} "
                f"with num_instances={num_instances} needs"
            )
        chunks = sum(max(len(g), num_instances) // num_instances for g in self.groups)
        self.num_batches = chunks // self.ids_per_batch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return _shard_batches(self.num_batches) * self.batch_size

    def _chunks(self, rng: np.random.Generator, group: np.ndarray) -> list[np.ndarray]:
        k = self.num_instances
        indices = rng.permutation(group if len(group) >= k else rng.choice(group, k, replace=True))
        return [indices[i : i + k] for i in range(0, len(indices) - k + 1, k)]

    def __iter__(self) -> Iterator[int]:
        return iter(_shard(self.epoch_indices(), self.batch_size))

    def epoch_indices(self) -> list[int]:
        """The whole epoch's num_batches P x K batches for (seed, epoch), as one process would draw them (under
        torch.distributed each process then keeps its share)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        chunks = [self._chunks(rng, g) for g in self.groups]
        available = list(range(len(self.groups)))
        out: list[int] = []
        for _ in range(self.num_batches):
            if len(available) < self.ids_per_batch:
                for i, group in enumerate(self.groups):
                    if not chunks[i]:
                        chunks[i] = self._chunks(rng, group)
                available = list(range(len(self.groups)))
            for j in rng.choice(len(available), self.ids_per_batch, replace=False):
                out.extend(chunks[available[j]].pop().tolist())
            available = [i for i in available if chunks[i]]
        return out


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _shard_batches(num_batches: int) -> int:
    """Each process's share of num_batches whole batches: ceil(num_batches / world size), as torch's
    DistributedSampler (without drop_last) rounds up, so that no process is left without a batch."""
    return -(-num_batches // _world()[0])


def _shard(indices: list[int], batch_size: int) -> list[int]:
    """Under torch.distributed every process draws the same epoch (same seed) and keeps whole batches
    rank, rank + W, ... so P x K batches stay intact (run with the Trainer's use_distributed_sampler=False).
    Every process gets the same number of batches, _shard_batches: when the batches do not divide evenly among
    the W processes, the first ones are repeated to fill (as torch's DistributedSampler pads)."""
    world, rank = _world()
    if world == 1:
        return indices
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if not batches:
        return []
    padded = [batches[i % len(batches)] for i in range(_shard_batches(len(batches)) * world)]
    return [i for batch in padded[rank::world] for i in batch]


class PseudoLabelSampler(Sampler[int]):
    """P x K batches over labels that change between epochs: `labels` is read when an epoch starts (after the
    module's on_train_epoch_start has clustered), and the epoch length is fixed at len(labels) // batch_size
    batches (shared among the processes under torch.distributed, each getting the same whole number of them)
    so Lightning's batch count stays right. When the labels give fewer P x K batches than that, more are drawn
    (the identity sampler's epochs for seeds (epoch, 0), (epoch, 1), ...) until there are enough for every
    process; the batches are then dealt out rank, rank + W, ..., so processes never train on the same batch."""

    def __init__(self, size: int, batch_size: int, num_instances: int, seed: int = 0):
        self.labels: np.ndarray | None = None
        self.size, self.batch_size, self.num_instances, self.seed, self.epoch = (
            size,
            batch_size,
            num_instances,
            seed,
            0,
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return _shard_batches(self.size // self.batch_size) * self.batch_size

    def __iter__(self) -> Iterator[int]:
        if self.labels is None:
            raise RuntimeError("PseudoLabelSampler: no pseudo-labels yet (the module clusters at each epoch start)")
        sampler = IdentitySampler(self.labels, self.batch_size, self.num_instances, self.seed)
        world, rank = _world()
        needed = len(self) * world  # every process's batches, drawn alike by all of them (same seeds)
        indices: list[int] = []
        cycle = 0
        while len(indices) < needed:  # each cycle adds num_batches >= 1 batches (IdentitySampler checks ids >= P)
            sampler.set_epoch(self.epoch * 1000 + cycle)
            indices.extend(sampler.epoch_indices())
            cycle += 1
        batches = [indices[i : i + self.batch_size] for i in range(0, needed, self.batch_size)]
        return iter([i for batch in batches[rank::world] for i in batch])
