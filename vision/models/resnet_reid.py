"""ResNet trunks for person re-identification: timm's ResNet with the last stride set to 1.

Re-id keeps layer4 at the resolution of layer3 (no dilation), so `forward_features` returns a map of
[B, C, H/16, W/16] (2048x16x8 for ResNet-50 at 256x128). Parameter names are timm's and torchvision's
(`conv1`, `bn1`, `layer1`..`layer4`), so ImageNet checkpoints load; nothing is ever downloaded. Start from a
local checkpoint with either

    timm.create_model("resnet50_reid", pretrained=True, pretrained_cfg_overlay=dict(file="resnet50.pth"))
    vision.load_checkpoint(timm.create_model("resnet50_reid"), "resnet50.safetensors")

(an ImageNet `fc` is dropped, as the trunks are created with num_classes=0).
"""

from __future__ import annotations

from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn

from .pretrained_cfg import imagenet_cfgs


class ResNetReID(ResNet):
    """timm ResNet whose layer4 keeps stride 1 (output stride 16); the head defaults to none (num_classes=0)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("zero_init_last", False)  # zero-initialised residual BNs would block gradients at step 0
        super().__init__(*args, **kwargs)
        if kwargs.get("output_stride", 32) != 32:
            raise ValueError("output_stride: the re-id trunk fixes it at 16 through the last stride; leave it unset")
        first = self.layer4[0]
        for module in first.modules():
            if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
                module.stride = (1, 1)
            elif isinstance(module, nn.AvgPool2d) and module.stride in (2, (2, 2)):
                raise ValueError("avg_down: not supported by the re-id trunk (its pooling keeps stride 2)")
        self.feature_info[-1]["reduction"] = 16


# Checkpoints are ImageNet-shaped (1000 classes); timm drops their `fc` for num_classes=0.
default_cfgs = imagenet_cfgs(
    ("resnet50_reid", "resnet18_reid", "resnet_reid_tiny"),
    first_conv="conv1",
    classifier="fc",
    input_size=(3, 256, 128),
    pool_size=(16, 8),
    crop_pct=1.0,
    interpolation="bilinear",
)


def _create(variant: str, pretrained: bool, **kwargs) -> ResNetReID:
    overlay = kwargs.get("pretrained_cfg_overlay") or {}
    if pretrained and not (overlay.get("file") or overlay.get("state_dict")):
        raise ValueError(
            f"pretrained: {variant} has no downloadable weights (nothing is fetched at run time); pass "
            "pretrained_cfg_overlay=dict(file=PATH) or load a local file with vision.load_checkpoint(model, path)"
        )
    kwargs.setdefault("num_classes", 0)
    return build_model_with_cfg(ResNetReID, variant, pretrained, **kwargs)


@register_model
def resnet50_reid(pretrained: bool = False, **kwargs) -> ResNetReID:
    """ResNet-50 (23.5M), last stride 1: 2048 channels at 1/16 resolution."""
    return _create("resnet50_reid", pretrained, **{**dict(block=Bottleneck, layers=(3, 4, 6, 3)), **kwargs})


@register_model
def resnet18_reid(pretrained: bool = False, **kwargs) -> ResNetReID:
    """ResNet-18 (11.2M), last stride 1: 512 channels at 1/16 resolution."""
    return _create("resnet18_reid", pretrained, **{**dict(block=BasicBlock, layers=(2, 2, 2, 2)), **kwargs})


@register_model
def resnet_reid_tiny(pretrained: bool = False, **kwargs) -> ResNetReID:
    """A narrow one-block-per-stage ResNet (base width 32, 256 channels, 1.2M) for CPU tests and demos."""
    args = dict(block=BasicBlock, layers=(1, 1, 1, 1), channels=(32, 64, 128, 256), stem_width=32)
    return _create("resnet_reid_tiny", pretrained, **{**args, **kwargs})


__all__ = ["ResNetReID"]
