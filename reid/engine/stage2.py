"""Stage 2 of CORE-ReID, `TargetFinetuner`: a student and its EMA teacher start from the stage-1 weights. Before
every epoch the teacher's features, fused with the student's ECAB attention, are clustered with K-means at three
levels (global, upper, lower); the global level's centroids re-initialise the classifier and its labels drive
the P x K sampler. Loss: CE(global) + triplet(global) + 0.5 (triplet(upper) + triplet(lower)), each level
against its own pseudo-labels. Validation uses the teacher on identities held out of the target's training
set; the test set is never used for model selection."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cluster_count import estimate_num_clusters
from ..clustering import camera_chance, camera_purity, cluster_purity, condition_features, kmeans
from ..losses import stage2_loss
from ..models.core_reid import CoreReIDNet, ensemble_fusion
from .checkpoints import read_network
from .evaluated import EvaluatedModule
from .optim import adam_with_warmup


@torch.no_grad()
def clustering_features(
    teacher: CoreReIDNet, student: CoreReIDNet, loader, flip: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """The ensemble-fused global, upper and lower features ([N, C] each, L2-normalised) of every image the loader
    gives, in eval mode (both networks are left in eval mode); `flip`: averaged with the mirrored image's (BMFN)."""
    teacher.eval()
    student.eval()
    device = next(teacher.parameters()).device
    levels: list[list[Tensor]] = [[], [], []]
    for batch in loader:
        image = batch["image"].to(device)
        fused = ensemble_fusion(teacher.forward_parts(image), student.forward_parts(image))
        if flip:
            mirror = image.flip(3)
            flipped = ensemble_fusion(teacher.forward_parts(mirror), student.forward_parts(mirror))
            fused = tuple(F.normalize(a + b, dim=1) for a, b in zip(fused, flipped, strict=True))
        for store, f in zip(levels, fused, strict=True):
            store.append(f)
    return tuple(torch.cat(parts) for parts in levels)


def average_with_renders(features: Tensor, render_features: Tensor, owners: Tensor) -> Tensor:
    """Row i: the L2-normalised mean of features[i] and the rows of `render_features` whose `owners` entry is i
    (an image's camera-style renders: the same person as if seen by the other cameras, so what the mean keeps is
    less tied to the camera that took it). Rows without renders are only normalised."""
    return F.normalize(features.index_add(0, owners.to(features.device), render_features), dim=1)


def _target_renders(dm) -> tuple[list, list[int]]:
    """The datamodule's target renders (samples, index of their original in target_train); an error if none."""
    renders = getattr(dm, "target_render_samples", None)
    samples, owners = renders() if renders is not None else ([], [])
    if not samples:
        raise ValueError(
            "camstyle_cluster_features: the datamodule has no target renders; give ReIDData(target_camstyle=...) the "
            "bounding_box_train_camstyle folder that python -m reid.gan writes for the target"
        )
    return samples, owners


@torch.no_grad()
def target_clustering_features(
    teacher: CoreReIDNet, student: CoreReIDNet, dm, flip: bool = False, camstyle: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """`clustering_features` of the datamodule's target training images, in target_train order; `camstyle`:
    each averaged with its renders' (`average_with_renders`, the renders read with the evaluation transform)."""
    levels = clustering_features(teacher, student, dm.loader(dm.target_train, train=False), flip)
    if camstyle:
        samples, owners = _target_renders(dm)
        rendered = clustering_features(teacher, student, dm.loader(samples, train=False), flip)
        owners = torch.tensor(owners, dtype=torch.long)
        levels = tuple(average_with_renders(f, r, owners) for f, r in zip(levels, rendered, strict=True))
    return levels


class TargetFinetuner(EvaluatedModule):
    """Stage 2. `source_checkpoint`: a stage-1 Lightning checkpoint (.ckpt) or a model saved with
    `reid.save_model` (.safetensors); its classifier is dropped. `num_clusters`: K for all three levels
    (CORE-ReID uses 500/700/900 for Market-sized targets); None: K is estimated from the data before every
    epoch's K-means (reid.cluster_count.estimate_num_clusters on the global level's clustering features: DBSCAN
    on k-reciprocal Jaccard distances with `jaccard_k1`, `jaccard_k2`, `dbscan_min_samples`, and eps the
    `dbscan_quantile` of the (min_samples - 1)-th neighbour distances; its noise counted as identities of the
    median cluster size). `camera_normalize`, `neighbor_expansion` (k of the k-reciprocal averaging; 0: off) and
    `cross_camera_neighbors` (neighbours from other cameras only) condition the clustering features.
    `camstyle_cluster_features`: each real target image's clustering feature is the normalised mean of its own and
    its camera-style renders' (ReIDData(target_camstyle=...); an error without renders), before that conditioning.
    `true_labels`: the target's true identities replace the clusters (a supervised upper bound of this stage for
    measurements on labelled data; never for adaptation).
    The trunk settings come from the checkpoint."""

    def __init__(
        self,
        source_checkpoint: str | None = None,
        trunk: str = "resnet50_reid",
        trunk_kwargs: dict[str, Any] | None = None,
        input_size: tuple[int, int] | None = None,
        num_clusters: int | None = 500,
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
        cross_camera_neighbors: bool = False,
        flip_cluster_features: bool = False,
        camstyle_cluster_features: bool = False,
        true_labels: bool = False,
        jaccard_k1: int = 20,
        jaccard_k2: int = 6,
        dbscan_min_samples: int = 4,
        dbscan_quantile: float = 0.8,
    ):
        super().__init__()
        if neighbor_expansion < 0 or (cross_camera_neighbors and neighbor_expansion < 1):
            raise ValueError(
                f"neighbor_expansion: expected k >= 0, and >= 1 with cross_camera_neighbors, got {neighbor_expansion}"
            )
        self.save_hyperparameters()
        self.student: CoreReIDNet | None = None
        self.teacher: CoreReIDNet | None = None
        self.register_buffer("pseudo_labels", torch.zeros(3, 0, dtype=torch.long), persistent=False)
        self._sampler = None  # the DataModule's PseudoLabelSampler, during fit
        if input_size is not None and source_checkpoint is None:
            self._build(None)

    def _build(self, weights: dict[str, Tensor] | None) -> None:
        h = self.hparams
        # with K estimated per epoch the classifier appears at the first clustering (reset_classifier)
        self.student = CoreReIDNet(h.trunk, h.num_clusters or 0, h.trunk_kwargs, tuple(h.input_size))
        if weights is not None:
            weights = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
            missing, unexpected = self.student.load_state_dict(weights, strict=False)
            if unexpected or set(missing) - {"classifier.weight"}:
                raise ValueError(f"source_checkpoint: missing {missing}, unexpected {unexpected}")
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self._sampler is None:  # also when the network was built in __init__
            if self.hparams.camstyle_cluster_features:
                _target_renders(self.trainer.datamodule)  # fail before training, not at the first clustering
            self._sampler = self.trainer.datamodule.use_pseudo_labels()
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

    # -- clustering ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def cluster(self) -> None:
        """K-means on the ensemble-fused features of every target training image, at three levels."""
        dm = self.trainer.datamodule
        was_training = self.student.training
        levels = target_clustering_features(
            self.teacher, self.student, dm, self.hparams.flip_cluster_features, self.hparams.camstyle_cluster_features
        )
        self.student.train(was_training)
        h = self.hparams
        k = h.num_clusters
        n = len(levels[0])
        if k is not None and k >= n:
            raise ValueError(f"num_clusters: {k} clusters for only {n} target training images")
        cams = torch.tensor([s.camid for s in dm.target_train], device=self.device)
        truth = torch.tensor([s.pid for s in dm.target_train])
        if h.true_labels:  # measurement only: the target's own identities replace the clusters at every level
            identities = torch.unique(truth, return_inverse=True)[1].to(self.device)
            k = int(identities.max()) + 1
        labels = []
        for level, features in enumerate(levels):
            if h.true_labels:
                assigned = identities
            else:
                clustered = condition_features(
                    features, cams, h.camera_normalize, h.neighbor_expansion, h.cross_camera_neighbors
                )
                if k is None:  # estimated once per epoch, on the global level, and used at all three
                    k = self._estimate_k(clustered, n)
                assigned, _ = kmeans(clustered, k, iters=h.kmeans_iters, seed=self.current_epoch)
            labels.append(assigned)
            if level == 0:  # the classifier starts from the means of the features themselves in each cluster
                sums = features.new_zeros(k, features.shape[1]).index_add_(0, assigned, features)
                centroids = sums / torch.bincount(assigned, minlength=k).clamp(min=1).unsqueeze(1)
                old = self.student.classifier
                self.student.reset_classifier(centroids)
                self.teacher.reset_classifier(centroids)
                self._optimise_new_classifier(old)
        self.pseudo_labels = torch.stack(labels).to(self.device)
        self._sampler.labels = labels[0].cpu().numpy()
        sizes = torch.bincount(labels[0], minlength=k)
        self.log("train/clusters_nonempty", float((sizes > 0).sum()))
        # Diagnostics only (never used for training): how well the global clusters follow the true identities
        # and how much they follow the cameras instead.
        self.log("train/purity", cluster_purity(labels[0].cpu(), truth))
        self.log("train/camera_purity", camera_purity(labels[0].cpu(), cams.cpu()))
        self.log("train/camera_purity_identities", camera_purity(truth, cams.cpu()))
        self.log("train/camera_chance", camera_chance(cams.cpu()))

    def _estimate_k(self, features: Tensor, n: int) -> int:
        """The number of clusters from the data (DBSCAN on k-reciprocal Jaccard distances), at least a P x K
        batch's P and below the number of images; logged with what DBSCAN found."""
        h, dm = self.hparams, self.trainer.datamodule
        k, found = estimate_num_clusters(
            features, k1=h.jaccard_k1, k2=h.jaccard_k2, min_samples=h.dbscan_min_samples, quantile=h.dbscan_quantile
        )
        k = min(max(k, dm.hparams.batch_size // dm.hparams.num_instances), n - 1)
        self.log_dict(
            {
                "train/num_clusters": float(k),
                "train/dbscan_eps": found["eps"],
                "train/dbscan_noise": found["noise"],
                "train/dbscan_clusters": found["dbscan"],
            }
        )
        return k

    def _optimise_new_classifier(self, old: torch.nn.Module | None) -> None:
        """When the number of clusters changed, reset_classifier made a new layer: the optimiser drops the old
        weight (and its Adam state) and trains the new one in the first parameter group."""
        new = self.student.classifier
        if new is old or self._trainer is None:
            return
        old_params = set(old.parameters()) if old is not None else set()
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if p not in old_params]
            for p in old_params:
                optimizer.state.pop(p, None)
            optimizer.param_groups[0]["params"].extend(new.parameters())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A checkpoint of an estimated-K run holds the classifier of its last K: resize before loading."""
        weight = checkpoint["state_dict"].get("student.classifier.weight")
        if weight is not None and self.student is not None:
            self.student.reset_classifier(torch.zeros_like(weight))
            self.teacher.reset_classifier(torch.zeros_like(weight))

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

    # -- evaluation: the teacher, as CORE-ReID's inference -----------------------------------------------------

    @property
    def inference_net(self) -> CoreReIDNet:
        return self.teacher

    def configure_optimizers(self):
        return adam_with_warmup(self.student.parameters(), self.hparams)
