"""Metrics that look at the object rather than the whole image: PSNR on the object's pixels, silhouette IoU and
relative depth error on the object, each with a clear error when shapes or values do not fit.

Shapes: images [..., 3, H, W] in 0..1; masks, opacity and depth [..., H, W]. A pixel belongs to the object where
its mask is above 0.5 (masks may be coverage fractions, e.g. after resizing).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional import mean_absolute_percentage_error
from torchmetrics.functional.classification import binary_jaccard_index
from torchmetrics.functional.image import peak_signal_noise_ratio

MASK_THRESHOLD = 0.5


def _check_mask(mask: Tensor, spatial: torch.Size, name: str = "mask") -> Tensor:
    if tuple(mask.shape) != tuple(spatial):
        raise ValueError(f"{name}: expected shape {tuple(spatial)} (one value per pixel), got {tuple(mask.shape)}")
    return mask > MASK_THRESHOLD


def object_psnr(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """PSNR (data range 1) over the object's pixels only, all channels pooled; NaN when the mask is empty.
    pred, target [..., 3, H, W]; mask [..., H, W]."""
    if pred.shape != target.shape or pred.ndim < 3:
        raise ValueError(
            f"pred, target: expected equal [..., C, H, W] shapes, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    inside = _check_mask(mask, pred.shape[:-3] + pred.shape[-2:])
    if not inside.any():
        return torch.tensor(float("nan"))
    select = inside.unsqueeze(-3).expand_as(pred)
    return peak_signal_noise_ratio(pred[select].float(), target[select].float(), data_range=1.0)


def silhouette_iou(opacity: Tensor, mask: Tensor, threshold: float = MASK_THRESHOLD) -> Tensor:
    """IoU of the rendered silhouette (opacity > threshold) with the true mask (> 0.5), over all pixels given;
    1 when both are empty. opacity and mask [..., H, W]."""
    inside = _check_mask(mask, opacity.shape)
    predicted = opacity > threshold
    if not (inside.any() or predicted.any()):
        return torch.tensor(1.0)
    return binary_jaccard_index(predicted.flatten().long(), inside.flatten().long(), threshold=0.5)


def depth_abs_rel(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean of |pred − target| / target over the object's pixels that have a depth (target > 0): the depth
    error as a fraction of the true camera depth, so scenes at any scale and distance compare. NaN when no pixel
    qualifies. pred, target, mask [..., H, W]."""
    if pred.shape != target.shape:
        raise ValueError(f"pred, target: expected equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    valid = _check_mask(mask, target.shape) & (target > 0)
    if not valid.any():
        return torch.tensor(float("nan"))
    return mean_absolute_percentage_error(pred[valid].float(), target[valid].float())


__all__ = ["MASK_THRESHOLD", "depth_abs_rel", "object_psnr", "silhouette_iou"]
