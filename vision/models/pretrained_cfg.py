"""The timm `pretrained_cfg` our models register: what a checkpoint expects of its input and where its stem and
classifier are (timm uses them to adapt input channels and replace the head).

No weights are published for these models, so `pretrained=True` takes a local file, as timm does for any model:
`timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=path))`. The file's tensors are
matched as vision.load_checkpoint matches them (by name and shape, after the layers' own adaptation of timm ViT
weights), and what was copied, skipped and left initialised is logged.
"""

import logging

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import generate_default_cfgs


def imagenet_cfgs(names, first_conv: str, classifier: str = "head", **overrides) -> dict:
    """timm default cfgs for `names`, each for an ImageNet-shaped checkpoint (1000 classes, 224² bicubic input,
    crop 0.9, ImageNet mean and std) unless `overrides` say otherwise."""
    cfg = {
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": first_conv,
        "classifier": classifier,
        **overrides,
    }
    return generate_default_cfgs({name: dict(cfg) for name in names})


log = logging.getLogger(__name__)


def local_weights_only(variant: str, pretrained: bool, kwargs: dict) -> None:
    """`pretrained=True` needs a local file in `pretrained_cfg_overlay` (nothing is downloaded): ValueError if not."""
    overlay = kwargs.get("pretrained_cfg_overlay") or {}
    if pretrained and not overlay.get("file"):
        raise ValueError(
            f"pretrained: {variant} has no downloadable weights (nothing is fetched at run time); pass a local file "
            "with pretrained_cfg_overlay=dict(file=path) or checkpoint_path=path, or load one later with "
            "vision.load_checkpoint(model, path)"
        )


def matching_filter(first=None):
    """A timm `pretrained_filter_fn` keeping the tensors that fit the model (vision.checkpoint.matching_tensors),
    after `first` (another filter, e.g. timm's ViT one); the model is then loaded non-strictly with them."""

    def filter_fn(state, model):
        from ..checkpoint import matching_tensors

        if first is not None:
            state = first(state, model)
        source = (getattr(model, "pretrained_cfg", None) or {}).get("file") or "the pretrained_cfg file"
        accepted, report = matching_tensors(model, dict(state), source)
        log.info("pretrained weights for %s:\n%s", type(model).__name__, report)
        return accepted

    return filter_fn
