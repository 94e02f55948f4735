"""LightningDataModule for CORE-ReID: a labelled source dataset and, for domain adaptation, an unlabelled
target dataset with identities held out of its training set for model selection."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from common.images import DecodedOnce

from .camstyle import match_renders
from .datasets import CamStyleImages, ReIDImages, read_image, test_transform, train_transform
from .formats import DATASETS, ReIDSplits, Sample, read_dataset, split_held_out
from .sampler import IdentitySampler, PseudoLabelSampler, _world


class _RandomSampler(Sampler[int]):
    """num_samples indices, each pass over the dataset a fresh permutation; the order depends on (seed, epoch).
    Under torch.distributed every process draws the same stream of num_samples x world indices and keeps every
    world-th from its rank, so the processes see different images (together, whole passes over the dataset)."""

    def __init__(self, size: int, num_samples: int, seed: int = 0):
        self.size, self.num_samples, self.seed, self.epoch = size, num_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        world, rank = _world()
        total = self.num_samples * world
        rng = np.random.default_rng([self.seed, self.epoch])
        passes = [rng.permutation(self.size) for _ in range(math.ceil(total / self.size))]
        return iter(np.concatenate(passes)[:total][rank::world].tolist())


class ReIDData(L.LightningDataModule):
    """source / target: dataset names (market1501, cuhk03np, msmt17, folder) read from source_root /
    target_root. Without a target the module trains and evaluates on the source alone.

    Training batches (train_dataloader):
      - no target: one dict per batch, dict(image [B,3,H,W] float, pid [B] (0..P-1), camid [B], index [B],
        is_query [B] (all False)), B = batch_size, P x K sampled (P = batch_size / num_instances ids x K).
      - with a target: {"source": <the batch above>, "target": <the same keys, B random target training
        images with the training augmentation>}. Both loaders have the same number of batches; the target
        batch is forwarded to adapt BatchNorm statistics and its pids are not to be used as labels.

    Evaluation batches (val/test_dataloader) have the same keys; the dataset is query + gallery in one list,
    `is_query` marks the queries (also `loader.dataset.num_query`: items 0..num_query-1), `index` is the
    position in that list (use it to drop the duplicates a distributed sampler pads with).
      - val: the target identities held out of its training set (held_out_fraction of them; never the
        target test set), or the source query + gallery when there is no target or held_out_fraction is 0.
      - test: the target test query + gallery (the source's when there is no target).

    style_augment: photometric training augmentation (colour jitter, grayscale, blur; see `train_transform`).
    pad: padding before the training random crop, in pixels (None: 10 per 256 of height; see `train_transform`).
    cache_images: decode each image file once and keep it in memory for every loader (`common.images.DecodedOnce`):
    the same batches, without decoding the same files every epoch; for datasets that fit in memory (Market-1501's
    36k images at 128 x 64 take about 0.9 GB, once per DataLoader worker).

    dataset_kwargs: extra reader arguments per side, e.g. {"source": {"use_val": False}, "target":
    {"variant": "labeled"}}. After setup: source_splits, target_splits, target_train (target training images
    minus the held-out ids), target_val_query, target_val_gallery.

    Camera-style renders (stage 0: the `bounding_box_train_camstyle` folder `python -m reid.gan` writes, or its
    output folder; names `<original stem>_fake_<a>to<b>.jpg`, each matched to its original training image):
      - source_camstyle (CORE-ReID's stage 1): the renders join the source training set with their original's
        pid and camid (`source_renders`; the training loader draws P x K over `source_train`, real + renders, so
        an epoch has about C times as many batches for C cameras). Validation and test stay real.
      - target_camstyle (CamStyle for stage 2): `target_train` stays the real images (clustering, pseudo-label
        indices, diagnostics); `target_renders[i]` lists the renders of target_train[i] (empty without
        target_camstyle). Renders of held-out identities are dropped (`camstyle_dropped` counts them). After
        `use_pseudo_labels`, item i of the training loader is target_train[i]'s real image or, with probability
        `camstyle_prob`, one of its renders, with index i (so it takes i's pseudo-label). The stage-1 target
        batch (BatchNorm statistics) stays real.
    A render whose name is not a render name, or whose original is not a training image (nor, on the target, a
    held-out one), is a ValueError naming the file.
    """

    def __init__(
        self,
        source: str,
        source_root: str,
        target: str | None = None,
        target_root: str | None = None,
        height: int = 256,
        width: int = 128,
        batch_size: int = 64,
        num_instances: int = 4,
        num_workers: int = 4,
        held_out_fraction: float = 0.2,
        seed: int = 0,
        dataset_kwargs: dict | None = None,
        style_augment: bool = False,
        pad: int | None = None,
        source_camstyle: str | None = None,
        target_camstyle: str | None = None,
        camstyle_prob: float = 0.5,
        cache_images: bool = False,
    ):
        super().__init__()
        for role, name in (("source", source), ("target", target)):
            if name is not None and name not in DATASETS:
                raise ValueError(f"{role}: unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        if (target is None) != (target_root is None):
            raise ValueError(f"target and target_root: give both or neither, got {target!r} and {target_root!r}")
        if batch_size < 1 or batch_size % num_instances:
            raise ValueError(
                f"batch_size: expected a positive multiple of num_instances={num_instances}, got {batch_size}"
            )
        if height < 1 or width < 1:
            raise ValueError(f"height, width: expected positive sizes, got {height} x {width}")
        if pad is not None and pad < 0:
            raise ValueError(f"pad: expected >= 0 pixels or None, got {pad}")
        if not 0 <= held_out_fraction < 1:
            raise ValueError(f"held_out_fraction: expected a value in [0, 1), got {held_out_fraction}")
        if target_camstyle is not None and target is None:
            raise ValueError(f"target_camstyle: renders of a target ({target_camstyle!r}) but no target dataset")
        if not 0 <= camstyle_prob <= 1:
            raise ValueError(f"camstyle_prob: expected a probability in [0, 1], got {camstyle_prob}")
        unknown = set(dataset_kwargs or {}) - {"source", "target"}
        if unknown:
            raise ValueError(f"dataset_kwargs: expected keys 'source' and/or 'target', got {sorted(unknown)}")
        self.save_hyperparameters()
        self.source_splits: ReIDSplits | None = None
        self.target_splits: ReIDSplits | None = None
        self.target_train: list[Sample] = []
        self.target_val_query: list[Sample] = []
        self.target_val_gallery: list[Sample] = []
        self.source_renders: list[Sample] = []
        self.target_renders: list[list[str]] = []
        self.camstyle_dropped = 0
        self._pseudo: PseudoLabelSampler | None = None
        self._read = DecodedOnce(read_image) if cache_images else None

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        kwargs = h.dataset_kwargs or {}
        if self.source_splits is None:
            self.source_splits = read_dataset(h.source, h.source_root, **kwargs.get("source", {}))
            if h.source_camstyle is not None:
                train = self.source_splits.train
                renders, _ = match_renders(h.source_camstyle, train)
                self.source_renders = [
                    s._replace(path=p) for s, paths in zip(train, renders, strict=True) for p in paths
                ]
        if h.target is not None and self.target_splits is None:
            self.target_splits = read_dataset(h.target, h.target_root, **kwargs.get("target", {}))
            self.target_train, self.target_val_query, self.target_val_gallery = split_held_out(
                self.target_splits.train, h.held_out_fraction, h.seed
            )
            if h.held_out_fraction > 0 and not self.target_val_query:
                raise ValueError(
                    f"held_out_fraction: none of the {h.target} identities held out ({h.held_out_fraction}) was "
                    "seen by two cameras, so there are no validation queries; raise the fraction"
                )
            self.target_renders = [[] for _ in self.target_train]
            if h.target_camstyle is not None:
                held_out = self.target_val_query + self.target_val_gallery
                self.target_renders, self.camstyle_dropped = match_renders(
                    h.target_camstyle, self.target_train, held_out
                )

    @property
    def source_train(self) -> list[Sample]:
        """The source training images stage 1 draws from: the real ones, then their renders (source_camstyle)."""
        return self._splits(self.source_splits).train + self.source_renders

    def target_render_samples(self) -> tuple[list[Sample], list[int]]:
        """Every target render as a Sample (its original's pid and camid) and the index of its original in
        target_train, in target_train order (e.g. for clustering features averaged over renders)."""
        samples, owners = [], []
        for i, (sample, paths) in enumerate(zip(self.target_train, self.target_renders, strict=True)):
            samples += [sample._replace(path=p) for p in paths]
            owners += [i] * len(paths)
        return samples, owners

    def loader(self, samples: Sequence[Sample], train: bool, labels: Sequence[int] | None = None) -> DataLoader:
        """train=True: training augmentation, P x K batches over `labels` (default: the samples' pids; -1 is
        never drawn), a full last batch. train=False: test transform, the samples in order (feature
        extraction, e.g. for clustering)."""
        h = self.hparams
        if not train:
            return self._eval_loader(list(samples), [])
        dataset = ReIDImages(samples, self._train_transform(), labels, read=self._read)
        ids = labels if labels is not None else [s.pid for s in samples]
        sampler = IdentitySampler(ids, h.batch_size, h.num_instances, h.seed)
        return self._loader(dataset, sampler, drop_last=True)

    def use_pseudo_labels(self) -> PseudoLabelSampler:
        """Stage 2: from now on the training loader is the target's training images (training augmentation) in
        P x K batches over pseudo-labels that the module writes into the returned sampler's `labels` at each
        epoch start. Batches carry `index` (position in target_train) to look the labels up; with target renders
        an item is, with probability camstyle_prob, a render of target_train[index] instead of the real image."""
        h = self.hparams
        if h.target is None or not self.target_train:
            raise ValueError("use_pseudo_labels: needs a target dataset with training images (target, target_root)")
        self._pseudo = PseudoLabelSampler(len(self.target_train), h.batch_size, h.num_instances, h.seed)
        return self._pseudo

    def train_dataloader(self) -> DataLoader | dict[str, DataLoader]:
        h = self.hparams
        if self._pseudo is not None:
            if any(self.target_renders):
                dataset = CamStyleImages(
                    self.target_train, self.target_renders, h.camstyle_prob, self._train_transform(), read=self._read
                )
            else:
                dataset = ReIDImages(self.target_train, self._train_transform(), read=self._read)
            return self._loader(dataset, self._pseudo, True)
        source = self.loader(self.source_train, train=True)
        if h.target is None:
            return source
        if not self.target_train:
            raise ValueError(f"target: no {h.target} training images left after holding out identities")
        dataset = ReIDImages(self.target_train, self._train_transform(), read=self._read)
        sampler = _RandomSampler(len(dataset), len(source.sampler), h.seed + 1)
        return {"source": source, "target": self._loader(dataset, sampler, drop_last=True)}

    def val_dataloader(self) -> DataLoader:
        if self.hparams.target is not None and self.target_val_query:
            return self._eval_loader(self.target_val_query, self.target_val_gallery)
        splits = self._splits(self.source_splits)
        return self._eval_loader(splits.query, splits.gallery)

    def test_dataloader(self) -> DataLoader:
        splits = self._splits(self.target_splits if self.hparams.target is not None else self.source_splits)
        return self._eval_loader(splits.query, splits.gallery)

    def _splits(self, splits: ReIDSplits | None) -> ReIDSplits:
        if splits is None:
            raise RuntimeError("ReIDData: call setup() before asking for a loader")
        return splits

    def _eval_loader(self, query: list[Sample], gallery: list[Sample]) -> DataLoader:
        h = self.hparams
        transform = test_transform(h.height, h.width)
        dataset = ReIDImages(query + gallery, transform, num_query=len(query), read=self._read)
        return self._loader(dataset, None, drop_last=False)

    def _train_transform(self):
        h = self.hparams
        return train_transform(h.height, h.width, h.style_augment, h.pad)

    def _loader(self, dataset: ReIDImages, sampler: Sampler | None, drop_last: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=workers,
            persistent_workers=workers > 0 and sampler is not None,
            pin_memory=torch.cuda.is_available(),
        )
