"""CORE-ReID's losses: label-smoothed cross-entropy, batch-hard soft-margin triplet, and the two stages' sums."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CrossEntropyLabelSmooth(nn.Module):
    """Cross-entropy against (1 - ε)·one_hot + ε/K (Szegedy et al.; torchreid's form), averaged over the batch."""

    def __init__(self, epsilon: float = 0.1):
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon: expected 0 <= epsilon < 1, got {epsilon}")
        self.epsilon = epsilon

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        if logits.ndim != 2 or targets.shape != logits.shape[:1]:
            raise ValueError(f"logits [B, K] and targets [B] expected, got {list(logits.shape)}, {list(targets.shape)}")
        log_probs = F.log_softmax(logits.float(), dim=1)
        nll = -log_probs.gather(1, targets.long().unsqueeze(1)).squeeze(1)
        uniform = -log_probs.mean(dim=1)
        return ((1 - self.epsilon) * nll + self.epsilon * uniform).mean()


def pairwise_euclidean(x: Tensor) -> Tensor:
    """[B, D] -> [B, B] Euclidean distances; the diagonal is exactly 0 (and passes no gradient)."""
    sq = x.pow(2).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2 * x @ x.T
    off_diagonal = ~torch.eye(len(x), dtype=torch.bool, device=x.device)
    return (d2 * off_diagonal).clamp(min=1e-12).sqrt()


class SoftTripletLoss(nn.Module):
    """Batch-hard triplet loss on Euclidean distances: for each anchor, its farthest positive d_ap and nearest
    negative d_an. `margin=None`: soft margin, softplus(d_ap - d_an) = -log softmax([d_ap, d_an])[1] (MMT's
    SoftTripletLoss with margin 0, as CORE-ReID uses it); a float: hard margin, max(0, d_ap - d_an + margin).
    Anchors without a negative in the batch are left out (the loss is 0 if none has one)."""

    def __init__(self, margin: float | None = None, normalize_feature: bool = False):
        super().__init__()
        self.margin = margin
        self.normalize_feature = normalize_feature

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        if features.ndim != 2 or labels.shape != features.shape[:1]:
            raise ValueError(
                f"features [B, D] and labels [B] expected, got {list(features.shape)}, {list(labels.shape)}"
            )
        x = features.float()
        if self.normalize_feature:
            x = F.normalize(x, dim=1)
        dist = pairwise_euclidean(x)
        same = labels[:, None] == labels[None, :]
        d_ap = dist.masked_fill(~same, float("-inf")).amax(dim=1)
        d_an = dist.masked_fill(same, float("inf")).amin(dim=1)
        valid = ~same.all(dim=1)
        if not valid.any():
            return features.sum() * 0.0
        gap = d_ap[valid] - d_an[valid]
        if self.margin is None:
            return F.softplus(gap).mean()
        return F.relu(gap + self.margin).mean()


def stage1_loss(
    out: dict[str, Tensor], labels: Tensor, *, epsilon: float = 0.1, margin: float | None = None
) -> dict[str, Tensor]:
    """Source pre-training: CE(logits of the global BN feature) + triplet(global pre-BN feature).
    Returns the total under "loss" and each term."""
    ce = CrossEntropyLabelSmooth(epsilon)(out["logits"], labels)
    tri = SoftTripletLoss(margin)(out["global"], labels)
    return {"loss": ce + tri, "ce": ce, "triplet": tri}


def stage2_loss(
    out_global: dict[str, Tensor],
    labels_global: Tensor,
    out_upper: dict[str, Tensor] | None = None,
    labels_upper: Tensor | None = None,
    out_lower: dict[str, Tensor] | None = None,
    labels_lower: Tensor | None = None,
    *,
    epsilon: float = 0.1,
    margin: float | None = None,
    local_weight: float = 0.5,
) -> dict[str, Tensor]:
    """Target fine-tuning: CE(global) + triplet(global) + w·triplet(upper) + w·triplet(lower), w = 0.5, each
    level against its own pseudo-labels. As in stage 1, CE takes the logits of the global BN feature and the
    global triplet the pre-BN feature; the half embeddings (no classifier, so no BNNeck split) are used as is.
    The upper/lower terms may come from their own P×K batches (as in CORE-ReID) or from the global batch
    (`out_upper`/`out_lower` None: `out_global` is used). Returns the total under "loss" and each term."""
    out_upper = out_global if out_upper is None else out_upper
    out_lower = out_global if out_lower is None else out_lower
    if labels_upper is None or labels_lower is None:
        raise ValueError("labels_upper and labels_lower: the pseudo-labels of the upper and lower levels are required")
    triplet = SoftTripletLoss(margin)
    ce = CrossEntropyLabelSmooth(epsilon)(out_global["logits"], labels_global)
    tri_global = triplet(out_global["global"], labels_global)
    tri_upper = triplet(out_upper["upper"], labels_upper)
    tri_lower = triplet(out_lower["lower"], labels_lower)
    total = ce + tri_global + local_weight * (tri_upper + tri_lower)
    return {
        "loss": total,
        "ce": ce,
        "triplet_global": tri_global,
        "triplet_upper": tri_upper,
        "triplet_lower": tri_lower,
    }


__all__ = ["CrossEntropyLabelSmooth", "SoftTripletLoss", "pairwise_euclidean", "stage1_loss", "stage2_loss"]
