"""CORE-ReID's network: a last-stride-1 ResNet trunk, a global BNNeck branch and two ECAB half branches.

From the trunk's C x h x w map:
  global      = BN(GAP + GMP) of the whole map (BNNeck: the pre-BN feature for the triplet loss, the BN'd one
                for the classifier and for inference);
  upper/lower = BN(Linear(2C -> C)(cat[GAP, GMP])) of the top/bottom half of the map re-weighted by that
                half's ECAB channel attention.

Unlike the released code, where ECAB's output feeds only the clustering features and so never learns, ECAB
sits in the forward path of the half branches: the stage-2 triplet losses on upper/lower train it, and
`ensemble_fusion` re-weights the teacher's halves with the student's trained ECAB, normalising without
parameters. Every learnable parameter of the student is reached by the stage-2 loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import vision  # noqa: F401  (registers the re-id trunks with timm)

LEVELS = ("global", "upper", "lower")


class ECAB(nn.Module):
    """Enhanced channel attention block: a deep bottleneck MLP of 1x1 convs shared by the max- and average-pooled
    map, summed and squashed to per-channel weights in (0, 1). At C=2048 the widths are the paper's
    2048-512-128-32-128-512-2048; narrower trunks scale them, never below `min_width`."""

    def __init__(self, channels: int, reduction: int = 4, depth: int = 3, min_width: int = 8):
        super().__init__()
        down = [channels] + [max(channels // reduction**i, min(min_width, channels)) for i in range(1, depth + 1)]
        widths = down + down[-2::-1]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Conv2d(cin, cout, 1, bias=False))
        self.mlp = nn.Sequential(*layers)
        self.widths = tuple(widths)

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, h, w] map -> [B, C] attention weights."""
        mx = x.amax(dim=(2, 3), keepdim=True)
        avg = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.mlp(mx) + self.mlp(avg)).flatten(1)


def _bn_neck(channels: int) -> nn.BatchNorm1d:
    """BatchNorm with a frozen zero bias (BNNeck): a bias would shift all features alike, which the triplet's
    distances cannot see, so it would never learn from the half branches' losses."""
    bn = nn.BatchNorm1d(channels)
    bn.bias.requires_grad_(False)
    return bn


class CoreReIDNet(nn.Module):
    """CORE-ReID network. `num_classes` sizes the (bias-free) classifier on the global BN feature: source
    identities in stage 1, clusters in stage 2 (re-initialised from centroids with `reset_classifier`); 0 for
    none. There is one classifier, on the global level only, because the stage-2 loss puts cross-entropy on
    the global pseudo-labels alone; classifiers on the halves would receive no gradient."""

    def __init__(
        self,
        trunk: str = "resnet50_reid",
        num_classes: int = 0,
        trunk_kwargs: dict[str, Any] | None = None,
        input_size: Sequence[int] = (256, 128),
    ):
        super().__init__()
        if len(input_size) != 2 or min(input_size) < 32:
            raise ValueError(f"input_size: expected (height, width) of at least 32 each, got {tuple(input_size)}")
        if num_classes < 0:
            raise ValueError(f"num_classes: expected >= 0, got {num_classes}")
        self.config = dict(
            trunk=trunk,
            num_classes=int(num_classes),
            trunk_kwargs=dict(trunk_kwargs or {}),
            input_size=[int(s) for s in input_size],
        )
        self.trunk = timm.create_model(trunk, **{"num_classes": 0, **(trunk_kwargs or {})})
        c = self.feature_dim_per_level = self.trunk.num_features
        self.bn_global = _bn_neck(c)
        self.ecab_upper, self.ecab_lower = ECAB(c), ECAB(c)
        # No bias: the BN right after removes any constant, so a bias would never receive gradient.
        self.fc_upper = nn.Linear(2 * c, c, bias=False)
        self.fc_lower = nn.Linear(2 * c, c, bias=False)
        self.bn_upper, self.bn_lower = _bn_neck(c), _bn_neck(c)
        for fc in (self.fc_upper, self.fc_lower):
            nn.init.kaiming_normal_(fc.weight, mode="fan_out")
        self.classifier = self._new_classifier(num_classes)

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.config["input_size"])

    @property
    def feature_dim(self) -> int:
        """Size of the inference embedding: concat[global, upper, lower]."""
        return 3 * self.feature_dim_per_level

    def _new_classifier(self, num_classes: int) -> nn.Linear | None:
        if num_classes == 0:
            return None
        classifier = nn.Linear(self.feature_dim_per_level, num_classes, bias=False)
        nn.init.normal_(classifier.weight, std=0.001)
        return classifier

    @torch.no_grad()
    def reset_classifier(self, centroids: Tensor) -> None:
        """Classifier weights := L2-normalised centroids [K, C] (CORE-ReID re-initialises from the global-level
        cluster centres every epoch). A new K replaces the layer, so rebuild the optimiser after that."""
        if centroids.ndim != 2 or centroids.shape[1] != self.feature_dim_per_level:
            raise ValueError(f"centroids: expected [K, {self.feature_dim_per_level}], got {list(centroids.shape)}")
        k = centroids.shape[0]
        if self.classifier is None or self.classifier.out_features != k:
            device = next(self.parameters()).device
            self.classifier = self._new_classifier(k).to(device)
            self.config["num_classes"] = k
        self.classifier.weight.copy_(F.normalize(centroids.float(), dim=1))

    def forward_parts(self, x: Tensor) -> dict[str, Tensor]:
        """All features of normalised images [B, 3, H, W], in train or eval mode:
        global [B,C] (pre-BN), global_bn, upper, lower (half embeddings, after their BN), logits [B,K] (with a
        classifier), att_upper/att_lower [B,C] (ECAB weights) and upper_pool/lower_pool [B,C] (GAP+GMP of the
        raw half maps, for `ensemble_fusion`)."""
        fmap = self.trunk.forward_features(x)
        h = fmap.shape[2]
        if h < 2:
            raise ValueError(f"x: the feature map has height {h}; images need a height of at least 32 pixels")
        out = {"global": fmap.mean(dim=(2, 3)) + fmap.amax(dim=(2, 3))}
        out["global_bn"] = self.bn_global(out["global"])
        halves = (("upper", fmap[:, :, : h // 2], self.ecab_upper, self.fc_upper, self.bn_upper),)
        halves += (("lower", fmap[:, :, h // 2 :], self.ecab_lower, self.fc_lower, self.bn_lower),)
        for name, half, ecab, fc, bn in halves:
            att = ecab(half)
            avg, mx = half.mean(dim=(2, 3)), half.amax(dim=(2, 3))
            # The weights are positive and per channel, so pooling the re-weighted map = re-weighting the pools.
            out[name] = bn(fc(torch.cat([avg * att, mx * att], dim=1)))
            out[f"att_{name}"] = att
            out[f"{name}_pool"] = avg + mx
        if self.classifier is not None:
            out["logits"] = self.classifier(out["global_bn"])
        return out

    def forward(self, x: Tensor) -> dict[str, Tensor] | Tensor:
        """Training: the dict of `forward_parts`. Eval: concat[global_bn, upper, lower] [B, 3C] (not normalised)."""
        if self.training:
            return self.forward_parts(x)
        return self.features(x)

    def features(self, x: Tensor) -> Tensor:
        out = self.forward_parts(x)
        return torch.cat([out["global_bn"], out["upper"], out["lower"]], dim=1)

    def embed(self, x: Tensor) -> Tensor:
        """BMFN inference embedding of normalised images [B,3,H,W]: the mean of the features of x and its
        horizontal mirror, then L2-normalised -> [B, 3C]. Call in eval mode."""
        both = self.features(torch.cat([x, x.flip(3)], dim=0))
        return F.normalize((both[: x.shape[0]] + both[x.shape[0] :]) / 2, dim=1)


def ensemble_fusion(teacher_out: dict[str, Tensor], student_out: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Clustering features of one batch from the teacher's and student's `forward_parts` (eval mode):
    global = the teacher's global BN feature; upper/lower = the teacher's pooled half maps re-weighted by the
    student's ECAB attention of that half. Each is L2-normalised (the released code BN'd them with layers no
    loss trained; a normalisation without parameters leaves nothing untrained) -> three [B, C] tensors."""
    return (
        F.normalize(teacher_out["global_bn"], dim=1),
        F.normalize(teacher_out["upper_pool"] * student_out["att_upper"], dim=1),
        F.normalize(teacher_out["lower_pool"] * student_out["att_lower"], dim=1),
    )


__all__ = ["ECAB", "LEVELS", "CoreReIDNet", "ensemble_fusion"]
