"""LaViT: timm's VisionTransformer with KernelAttention, so any attention kind drops into a plain ViT.

At attn_kind="softmax" the parameter names, shapes and outputs are timm's `vit_*_patch16_224`, so timm
and MAE checkpoints load strictly; any other kind loads the same checkpoint and initialises the rest.
"""

from __future__ import annotations

from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

from ..layers import KernelAttention

LOCAL_LAYERS_FRACTION = 0.5  # TransNormer: DiagAttention (local) in the first half, NormAttention after


class LaViT(VisionTransformer):
    def __init__(
        self,
        attn_kind: str = "softmax",
        rope: bool = False,
        attn_options: dict[str, Any] | None = None,
        attn_backend: str = "auto",
        landmark_ratio: int = 2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.attn_kind = attn_kind
        depth = len(self.blocks)
        for i, block in enumerate(self.blocks):
            old = block.attn
            kind, options = attn_kind, dict(attn_options or {})
            if attn_kind == "norm" and i < depth * LOCAL_LAYERS_FRACTION:
                kind, options = "local", {k: v for k, v in options.items() if k == "block_size"}
            elif attn_kind == "norm":
                options.pop("block_size", None)
            new = KernelAttention(
                old.qkv.in_features,
                old.num_heads,
                qkv_bias=old.qkv.bias is not None,
                proj_bias=old.proj.bias is not None,
                attn_drop=old.attn_drop.p if kind == "softmax" else 0.0,
                proj_drop=old.proj_drop.p,
                attn_kind=kind,
                rope=rope,
                num_prefix_tokens=self.num_prefix_tokens,
                landmark_ratio=landmark_ratio,
                decay_scale=1 - i / max(1, depth - 1) + 1e-5,
                attn_options=options,
                backend=attn_backend,
            )
            new.q_norm, new.k_norm, new.norm = old.q_norm, old.k_norm, old.norm  # timm's (norms or Identity)
            new.default_hw = tuple(self.patch_embed.grid_size)
            block.attn = new
        self.init_weights(self.weight_init_mode)


def _cfg(**kwargs) -> dict:
    return {
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": None,
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {name: _cfg() for name in ("lavit_tiny_patch16_224", "lavit_small_patch16_224", "lavit_base_patch16_224")}
)


def _create(variant: str, pretrained: bool, **kwargs) -> LaViT:
    if pretrained:
        raise ValueError(
            f"pretrained: {variant} has no downloadable weights (nothing is fetched at run time); create it with "
            "pretrained=False and load a local file with vision.load_checkpoint(model, path)"
        )
    out_indices = kwargs.pop("out_indices", 3)
    return build_model_with_cfg(
        LaViT,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


@register_model
def lavit_tiny_patch16_224(pretrained: bool = False, **kwargs) -> LaViT:
    """ViT-Ti/16 (5.7M) with a chosen attention kind."""
    return _create(
        "lavit_tiny_patch16_224", pretrained, **{**dict(patch_size=16, embed_dim=192, depth=12, num_heads=3), **kwargs}
    )


@register_model
def lavit_small_patch16_224(pretrained: bool = False, **kwargs) -> LaViT:
    """ViT-S/16 (22M) with a chosen attention kind."""
    return _create(
        "lavit_small_patch16_224", pretrained, **{**dict(patch_size=16, embed_dim=384, depth=12, num_heads=6), **kwargs}
    )


@register_model
def lavit_base_patch16_224(pretrained: bool = False, **kwargs) -> LaViT:
    """ViT-B/16 (86M) with a chosen attention kind."""
    return _create(
        "lavit_base_patch16_224", pretrained, **{**dict(patch_size=16, embed_dim=768, depth=12, num_heads=12), **kwargs}
    )


__all__ = ["LaViT"]
