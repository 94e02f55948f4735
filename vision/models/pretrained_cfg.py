"""The timm `pretrained_cfg` our models register: what a checkpoint expects of its input and where its stem and
classifier are (timm uses them to adapt input channels and replace the head)."""

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
