"""CORE-ReID stages 1 and 2 as LightningModules (stage 0, the camera-style CycleGAN, is reid.gan).

Stage 1, `SourcePretrainer`: label-smoothed CE on the global BN feature + batch-hard soft triplet on the
pre-BN feature over P x K source batches; the target batch is forwarded too (without gradient) so that
BatchNorm's running statistics see the target domain. Adam, linear warm-up, step decay.

Stage 2, `TargetFinetuner`: a student and its EMA teacher start from the stage-1 weights. Before every
epoch the teacher's features, fused with the student's ECAB attention, are clustered with K-means at three
levels (global, upper, lower); the global level's centroids re-initialise the classifier and its labels drive
the P x K sampler. Loss: CE(global) + triplet(global) + 0.5 (triplet(upper) + triplet(lower)), each level
against its own pseudo-labels. Validation uses the teacher on identities held out of the target's training
set; the test set is never used for model selection.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .clustering import kmeans
from .evaluation import evaluate
from .losses import stage1_loss, stage2_loss
from .model import CoreReIDNet, ensemble_fusion

log = logging.getLogger(__name__)


class _Evaluation:
    """Collects BMFN embeddings of an evaluation loader (query + gallery in one list, `is_query` marking the
    queries) and scores them with the Market-1501 protocol."""

    def __init__(self):
        self.parts: list[tuple[Tensor, ...]] = []

    def add(self, net: CoreReIDNet, batch: dict) -> None:
        features = net.embed(batch["image"])
        self.parts.append((features, batch["pid"], batch["camid"], batch["is_query"], batch["index"]))

    def compute(self, module: L.LightningModule) -> dict[str, float]:
        features, pids, camids, is_query, index = (torch.cat(x) for x in zip(*self.parts, strict=True))
        self.parts.clear()
        if module.trainer.world_size > 1:  # gather, then drop the duplicates the distributed sampler padded with
            features, pids, camids, is_query, index = (
                module.all_gather(x).flatten(0, 1) for x in (features, pids, camids, is_query, index)
            )
        _, first = np.unique(index.cpu().numpy(), return_index=True)
        keep = torch.as_tensor(first, device=features.device)
        features, pids, camids, is_query = features[keep], pids[keep], camids[keep], is_query[keep].bool()
        q, g = is_query, ~is_query
        distance = torch.cdist(features[q].float(), features[g].float())
        result = evaluate(distance, pids[q], pids[g], camids[q], camids[g], max_rank=10)
        return {"mAP": float(result["mAP"]), "rank1": float(result["cmc"][0]), "mINP": float(result["mINP"])}


def _adam_with_warmup(params, h) -> dict:
    optimizer = torch.optim.Adam(params, lr=h.lr, weight_decay=h.weight_decay)

    def factor(epoch: int) -> float:
        warm = 1.0 if epoch >= h.warmup_epochs else 0.01 + 0.99 * epoch / max(1, h.warmup_epochs)
        return warm * h.gamma ** sum(epoch >= m for m in h.milestones)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


class SourcePretrainer(L.LightningModule):
    """Stage 1. `num_classes` (source training identities) is read from the DataModule when not given.
    The image size is the DataModule's (height, width)."""

    def __init__(
        self,
        trunk: str = "resnet50_reid",
        trunk_kwargs: dict[str, Any] | None = None,
        num_classes: int | None = None,
        input_size: tuple[int, int] | None = None,
        lr: float = 3.5e-4,
        weight_decay: float = 5e-4,
        warmup_epochs: int = 10,
        milestones: Sequence[int] = (40, 70),
        gamma: float = 0.1,
        epsilon: float = 0.1,
        margin: float | None = None,
        adapt_bn_on_target: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net: CoreReIDNet | None = None
        self._eval = _Evaluation()
        if num_classes is not None and input_size is not None:
            self._build()

    def _build(self) -> None:
        h = self.hparams
        self.net = CoreReIDNet(h.trunk, h.num_classes, h.trunk_kwargs, tuple(h.input_size))

    def setup(self, stage: str) -> None:
        if self.net is not None:
            return
        dm = self.trainer.datamodule
        if self.hparams.num_classes is None:
            self.hparams.num_classes = dm.source_splits.num_train_pids
        if self.hparams.input_size is None:
            self.hparams.input_size = (dm.hparams.height, dm.hparams.width)
        self._build()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        source, target = (batch["source"], batch.get("target")) if "source" in batch else (batch, None)
        losses = stage1_loss(
            self.net(source["image"]), source["pid"], epsilon=self.hparams.epsilon, margin=self.hparams.margin
        )
        if target is not None and self.hparams.adapt_bn_on_target:
            with torch.no_grad():  # updates BatchNorm's running statistics with target images; no loss
                self.net.forward_parts(target["image"])
        if not torch.isfinite(losses["loss"]):
            raise FloatingPointError(f"stage-1 loss is {losses['loss'].item()} at step {self.global_step}")
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=len(source["pid"]))
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval.add(self.net, batch)

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval.add(self.net, batch)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def _log_eval(self, prefix: str) -> None:
        if self._eval.parts:
            self.log_dict({f"{prefix}/{k}": v for k, v in self._eval.compute(self).items()}, prog_bar=True)

    def configure_optimizers(self):
        return _adam_with_warmup(self.net.parameters(), self.hparams)


class TargetFinetuner(L.LightningModule):
    """Stage 2. `source_checkpoint`: a stage-1 Lightning checkpoint (.ckpt) or a model saved with
    `reid.save_model` (.safetensors); its classifier is dropped. `num_clusters`: K for all three levels
    (CORE-ReID uses 500/700/900 for Market-sized targets). The trunk settings come from the checkpoint."""

    def __init__(
        self,
        source_checkpoint: str | None = None,
        trunk: str = "resnet50_reid",
        trunk_kwargs: dict[str, Any] | None = None,
        input_size: tuple[int, int] | None = None,
        num_clusters: int = 500,
        lr: float = 3.5e-4,
        weight_decay: float = 5e-4,
        warmup_epochs: int = 0,
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        ema_decay: float = 0.999,
        epsilon: float = 0.1,
        margin: float | None = None,
        local_weight: float = 0.5,
        kmeans_iters: int = 100,
        camera_normalize: bool = False,
        neighbor_expansion: int = 0,
        flip_cluster_features: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.student: CoreReIDNet | None = None
        self.teacher: CoreReIDNet | None = None
        self._eval = _Evaluation()
        self.register_buffer("pseudo_labels", torch.zeros(3, 0, dtype=torch.long), persistent=False)
        self._sampler = None  # the DataModule's PseudoLabelSampler, during fit
        if input_size is not None and source_checkpoint is None:
            self._build(None)

    def _build(self, weights: dict[str, Tensor] | None) -> None:
        h = self.hparams
        self.student = CoreReIDNet(h.trunk, h.num_clusters, h.trunk_kwargs, tuple(h.input_size))
        if weights is not None:
            weights = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
            missing, unexpected = self.student.load_state_dict(weights, strict=False)
            if unexpected or set(missing) - {"classifier.weight"}:
                raise ValueError(f"source_checkpoint: missing {missing}, unexpected {unexpected}")
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)

    def setup(self, stage: str) -> None:
        if self.student is not None:
            return
        h = self.hparams
        weights = None
        if h.source_checkpoint:
            weights, config = read_network(h.source_checkpoint)
            h.trunk, h.trunk_kwargs, h.input_size = config["trunk"], config["trunk_kwargs"], config["input_size"]
        if h.input_size is None:
            dm = self.trainer.datamodule
            h.input_size = (dm.hparams.height, dm.hparams.width)
        self._build(weights)
        if stage == "fit":
            self._sampler = self.trainer.datamodule.use_pseudo_labels()

    # -- clustering ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def cluster(self) -> None:
        """K-means on the ensemble-fused features of every target training image, at three levels."""
        dm = self.trainer.datamodule
        loader = dm.loader(dm.target_train, train=False)
        was_training = self.student.training
        self.student.eval()
        self.teacher.eval()
        levels: list[list[Tensor]] = [[], [], []]
        for batch in loader:
            image = batch["image"].to(self.device)
            fused = ensemble_fusion(self.teacher.forward_parts(image), self.student.forward_parts(image))
            if self.hparams.flip_cluster_features:  # BMFN: average with the mirrored image's features
                mirror = image.flip(3)
                flipped = ensemble_fusion(self.teacher.forward_parts(mirror), self.student.forward_parts(mirror))
                fused = tuple(F.normalize(a + b, dim=1) for a, b in zip(fused, flipped, strict=True))
            for store, f in zip(levels, fused, strict=True):
                store.append(f)
        self.student.train(was_training)
        k = self.hparams.num_clusters
        n = sum(len(f) for f in levels[0])
        if k >= n:
            raise ValueError(f"num_clusters: {k} clusters for only {n} target training images")
        cams = torch.tensor([s.camid for s in dm.target_train], device=self.device)
        labels = []
        for level, parts in enumerate(levels):
            features = torch.cat(parts)
            clustered = camera_normalize(features, cams) if self.hparams.camera_normalize else features
            if self.hparams.neighbor_expansion:
                clustered = reciprocal_expansion(clustered, self.hparams.neighbor_expansion)
            assigned, centroids = kmeans(clustered, k, iters=self.hparams.kmeans_iters, seed=self.current_epoch)
            labels.append(assigned)
            if level == 0:
                if clustered is not features:  # the classifier acts on the features themselves: their cluster means
                    sums = torch.zeros_like(centroids).index_add_(0, assigned, features)
                    centroids = sums / torch.bincount(assigned, minlength=k).clamp(min=1).unsqueeze(1)
                self.student.reset_classifier(centroids)
                self.teacher.reset_classifier(centroids)
        self.pseudo_labels = torch.stack(labels).to(self.device)
        self._sampler.labels = labels[0].cpu().numpy()
        sizes = torch.bincount(labels[0], minlength=k)
        self.log("train/clusters_nonempty", float((sizes > 0).sum()))
        # Diagnostics only (never used for training): how well the global clusters follow the true identities
        # and how much they follow the cameras instead.
        truth = torch.tensor([s.pid for s in dm.target_train])
        self.log("train/purity", cluster_purity(labels[0].cpu(), truth))
        self.log("train/camera_purity", cluster_purity(labels[0].cpu(), cams.cpu()))

    def on_train_epoch_start(self) -> None:
        self.cluster()

    # -- training --------------------------------------------------------------------------------------------

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        labels = self.pseudo_labels[:, batch["index"].to(self.device)]
        h = self.hparams
        losses = stage2_loss(
            self.student(batch["image"]),
            labels[0],
            labels_upper=labels[1],
            labels_lower=labels[2],
            epsilon=h.epsilon,
            margin=h.margin,
            local_weight=h.local_weight,
        )
        if not torch.isfinite(losses["loss"]):
            raise FloatingPointError(f"stage-2 loss is {losses['loss'].item()} at step {self.global_step}")
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=len(labels[0]))
        return losses["loss"]

    @torch.no_grad()
    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        alpha = min(1 - 1 / (self.global_step + 1), self.hparams.ema_decay)
        for t, s in zip(self.teacher.state_dict().values(), self.student.state_dict().values(), strict=True):
            if t.dtype.is_floating_point:
                t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
            else:
                t.copy_(s)

    # -- evaluation (the teacher, as CORE-ReID's inference) --------------------------------------------------

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval.add(self.teacher, batch)

    def on_validation_epoch_end(self) -> None:
        if self._eval.parts:
            self.log_dict({f"val/{k}": v for k, v in self._eval.compute(self).items()}, prog_bar=True)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval.add(self.teacher, batch)

    def on_test_epoch_end(self) -> None:
        if self._eval.parts:
            self.log_dict({f"test/{k}": v for k, v in self._eval.compute(self).items()}, prog_bar=True)

    def configure_optimizers(self):
        return _adam_with_warmup(self.student.parameters(), self.hparams)


def camera_normalize(features: Tensor, cams: Tensor) -> Tensor:
    """Per-camera standardisation [N, D] -> [N, D] L2-normalised: each camera's mean is subtracted and each
    dimension divided by its std within that camera, so the clusters follow identities rather than the cameras'
    colour and exposure (the camera ids of unlabelled images are known, as in most unsupervised re-id work)."""
    out = torch.empty_like(features)
    for cam in cams.unique():
        mask = cams == cam
        part = features[mask]
        std = part.std(dim=0, unbiased=False) if len(part) > 1 else torch.ones_like(part[0])
        out[mask] = (part - part.mean(dim=0)) / (std + 1e-6)
    return F.normalize(out, dim=1)


def reciprocal_expansion(features: Tensor, k: int, chunk_size: int = 4096) -> Tensor:
    """Each L2-normalised feature [N, D] averaged with its k-reciprocal neighbours (j among i's k nearest and i
    among j's), then re-normalised: the neighbourhood consensus that MMT/SpCL get from k-reciprocal Jaccard
    distances, in a form K-means can take. Memory N x k (distances in chunks)."""
    k = min(k, len(features) - 1)
    if k < 1:
        return features
    nearest = torch.cat(
        [torch.cdist(part, features).topk(k + 1, largest=False).indices[:, 1:] for part in features.split(chunk_size)]
    )
    rows = torch.arange(len(features), device=features.device)
    mutual = (nearest[nearest] == rows[:, None, None]).any(dim=2)  # [N, k]: i is among its neighbour's k nearest
    summed = features + (features[nearest] * mutual.unsqueeze(2).to(features.dtype)).sum(dim=1)
    return F.normalize(summed, dim=1)


def cluster_purity(labels: Tensor, truth: Tensor) -> float:
    """Fraction of items whose cluster's most common true label is their own (1: every cluster one class)."""
    pairs = labels.long() * (int(truth.max()) + 1) + truth.long()
    counts = torch.bincount(pairs, minlength=(int(labels.max()) + 1) * (int(truth.max()) + 1))
    return float(counts.view(-1, int(truth.max()) + 1).amax(dim=1).sum()) / len(labels)


def read_network(path: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Network weights and config from a saved inference model (.safetensors) or a Lightning checkpoint: a
    stage-1 one (its network) or a stage-2 one (its EMA teacher, CORE-ReID's inference model)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint: no such file {file}")
    if file.suffix == ".safetensors":
        from .inference import read_model_files

        return read_model_files(file)
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
        h, state = checkpoint["hyper_parameters"], checkpoint["state_dict"]
        prefix = "net." if any(k.startswith("net.") for k in state) else "teacher."
        weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        config = {"trunk": h["trunk"], "trunk_kwargs": h.get("trunk_kwargs"), "input_size": h["input_size"]}
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        raise ValueError(f"checkpoint {file}: not a stage-1 or stage-2 checkpoint ({reason})") from error
    if not weights:
        raise ValueError(f"checkpoint {file}: holds neither a stage-1 network nor a stage-2 teacher")
    return weights, config


__all__ = ["SourcePretrainer", "TargetFinetuner", "read_network"]
