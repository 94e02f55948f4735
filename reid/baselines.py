"""A trivial re-identification baseline to compare learned features with: colour histograms over horizontal
stripes (the hand-made descriptors re-id started from, e.g. ELF and LOMO's colour part). What a model scores
above this is what it learned beyond clothing colour."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor


def colour_histograms(images: Tensor, *, stripes: int = 6, bins: int = 16) -> Tensor:
    """[N, 3, H, W] RGB in 0..1 -> [N, stripes * 6 * bins] L2-normalised descriptors: for each of `stripes`
    horizontal bands, a `bins`-bin histogram of each of R, G, B, hue, saturation and value, normalised to sum 1
    and square-rooted (so that the Euclidean distance between descriptors is the Hellinger distance)."""
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        shape = list(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images: expected a float [N, 3, H, W] RGB tensor in 0..1, got {shape}")
    if stripes < 1 or bins < 1 or images.shape[2] < stripes:
        raise ValueError(f"stripes, bins: expected 1 <= stripes <= height and bins >= 1, got {stripes}, {bins}")
    images = images.clamp(0, 1)
    hsv = kornia.color.rgb_to_hsv(images)
    channels = torch.cat([images, hsv[:, :1] / (2 * torch.pi), hsv[:, 1:]], dim=1)  # six channels in 0..1
    index = (channels * bins).long().clamp_(max=bins - 1)  # [N, 6, H, W]
    rows = torch.arange(images.shape[2], device=images.device) * stripes // images.shape[2]  # stripe of each row
    cell = (rows.view(1, 1, -1, 1) * 6 + torch.arange(6, device=images.device).view(1, 6, 1, 1)) * bins + index
    cell = cell.flatten(1)
    counts = images.new_zeros(len(images), stripes * 6 * bins).scatter_add_(1, cell, images.new_ones(cell.shape))
    per_histogram = counts.view(len(images), stripes * 6, bins)
    histograms = per_histogram / per_histogram.sum(dim=2, keepdim=True)
    return F.normalize(histograms.sqrt().flatten(1), dim=1)


def histogram_embedder(size: tuple[int, int] = (64, 32), **options) -> Callable[[Sequence[str | Path]], Tensor]:
    """An embedding function (image paths -> colour_histograms of the images resized to `size`), for
    `reid.evaluation.evaluate_folder`; `options` go to colour_histograms."""
    from .models.inference import _to_tensor

    def embed(paths: Sequence[str | Path]) -> Tensor:
        images = [F.interpolate(_to_tensor(p)[None], size=size, mode="bilinear", antialias=True) for p in paths]
        return colour_histograms(torch.cat(images), **options)

    return embed
