"""Whether a photo is far outside what the model was trained on, and the one-line notice that says so.

The test is cheap and needs nothing but the model: render the predicted field from the input camera, at the
model's input size, and compare it with the prepared photo it came from. A model reproduces the kind of image it
was trained on (its own loss is on such views); on a photo unlike its training data it returns a blurred guess,
no closer to the photo than a flat image of the photo's mean colour. The photo gets the notice when the input
view's PSNR is below INPUT_VIEW_MIN_PSNR or its gain over that flat image is below INPUT_VIEW_MIN_GAIN
(measurements behind both numbers: docs/nvs.md, "Photos far from the training data"). A photo of one flat
colour (a 1×1 image, a blank frame) has nothing to compare: it gets its own notice instead.

A field that renders NaN or Inf (finite but huge weights, from a diverged training run) raises NonFiniteRender
here, before anything is written; a score that is not finite for any other reason (a perfect reproduction, a flat
photo's infinite PSNR) is given as None, so the scores always go into strict JSON.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio

from .model.nvist import RadianceField

INPUT_VIEW_MIN_PSNR = 16.0  # dB
INPUT_VIEW_MIN_GAIN = 0.0  # dB above the photo's mean colour
FLAT_PHOTO_MAX_CONTRAST = 1 / 255  # RMS distance to the mean colour below which a photo is one flat colour
REAL_DATA_CONFIG = "configs/nvs/nvist_mvimgnet.yaml"  # the recipe to train on real photos (MVImgNet)


class NonFiniteRender(ValueError):
    """The model rendered NaN or Inf for a photo: its weights, finite but huge (a diverged training run's?), make
    no usable field."""


def check_finite(what: str, *tensors: Tensor) -> None:
    """NonFiniteRender naming `what` unless every value of `tensors` is finite."""
    if not all(bool(torch.isfinite(tensor).all()) for tensor in tensors):
        raise NonFiniteRender(
            f"the model rendered NaN or Inf {what} for this photo (are its weights from a diverged training run?); "
            "nothing written"
        )


def input_view_scores(field: RadianceField, image: Tensor) -> dict[str, float | None]:
    """`psnr` of `field` rendered from the input camera against the prepared photo [3, H, W] it was predicted
    from (the model's input size, the field's focal), its `gain` in dB over the photo's mean colour, and the
    photo's `contrast` (RMS distance of its pixels to that mean colour, 0..1). A score that is not finite (an
    exact reproduction) is None; a rendered view that is not finite raises NonFiniteRender."""
    _, height, width = image.shape
    camera = dict(fx=field.focal, fy=field.focal, cx=width / 2, cy=height / 2, width=width, height=height)
    rendered = field.render(torch.eye(4)[None], **camera)["rgb"][0].permute(2, 0, 1).cpu()
    check_finite("colour (its own view)", rendered)
    image = image.cpu().clamp(0, 1)
    score = float(peak_signal_noise_ratio(rendered, image, data_range=1.0))
    flat = image.mean(dim=(1, 2), keepdim=True).expand_as(image)
    contrast = float((image - flat).square().mean().sqrt())
    gain = score - float(peak_signal_noise_ratio(flat, image, data_range=1.0))
    return {"psnr": _rounded(score, 3), "gain": _rounded(gain, 3), "contrast": _rounded(contrast, 5)}


def _rounded(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def notice(scores: dict[str, float | None], training_data: str | None) -> str | None:
    """The one-line out-of-distribution notice for input_view_scores, or None when the photo looks familiar."""
    if scores.get("contrast", 1.0) < FLAT_PHOTO_MAX_CONTRAST:
        return (
            f"this photo is one flat colour (RMS contrast {scores['contrast'] * 255:.2f} of 255 levels at the model's "
            "input size): there is no object in it to reconstruct, so the views show only the model's guess"
        )
    psnr, gain = scores["psnr"], scores["gain"]  # None: not finite, which a field rendering NaN never reaches
    if (psnr is None or psnr >= INPUT_VIEW_MIN_PSNR) and (gain is None or gain >= INPUT_VIEW_MIN_GAIN):
        return None
    trained_on = training_data or "data its JSON does not record"
    return (
        f"this photo looks far from what the model was trained on ({trained_on}): its own view comes back at "
        f"{scores['psnr']:.1f} dB, {scores['gain']:+.1f} dB over a flat image of its mean colour, so expect a "
        f"blob, not the object; to render such photos, train on real data with {REAL_DATA_CONFIG}"
    )
