"""LaViT: timm's VisionTransformer with `attn_layer=` one of our attention classes, so any kind drops into a ViT.

At attn_kind="softmax" the parameter names, shapes and outputs are timm's `vit_*_patch16_224`, so timm
and MAE checkpoints load strictly; any other kind loads the same checkpoint and initialises the rest.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from timm.layers import to_2tuple
from timm.models import build_model_with_cfg, register_model
from timm.models.vision_transformer import Block, VisionTransformer, checkpoint_filter_fn

from ..layers import KernelAttention, bind, get_attn_layer
from ..layers.attention import LightningAttention, LocalAttention, NormAttention, SoftAttention
from .pretrained_cfg import imagenet_cfgs

LOCAL_LAYERS_FRACTION = 0.5  # TransNormer: DiagAttention (local) in the first half, NormAttention after


class LaViTBlock(Block):
    """timm's Block, whose attention layer gets the model's settings and its place in the stack.

    timm builds every block with the same `attn_layer` class and hands a block its index (`depth`) only when the
    layer is DiffAttention; `layer_for_block` turns the model's layer class into this block's bound class.
    """

    def __init__(self, *args, attn_layer: type[KernelAttention], depth: int = 0, layer_for_block, **kwargs):
        super().__init__(*args, attn_layer=layer_for_block(attn_layer, depth), depth=depth, **kwargs)


def layer_for_block(
    layer: type[KernelAttention],
    index: int,
    *,
    depth: int,
    settings: dict[str, Any],
    local_fraction: float,
    landmark_ratio: int,
) -> type[KernelAttention]:
    """The attention class of block `index` of `depth`: TransNormer's norm runs local attention in the first
    `local_fraction` of the blocks, Lightning's decay slows with depth (TransNormerLLM), SOFT pools landmarks."""
    settings = dict(settings)
    options = dict(settings.pop("attn_options", None) or {})
    if issubclass(layer, NormAttention) and index < depth * local_fraction:
        layer, options = LocalAttention, {k: v for k, v in options.items() if k == "block_size"}
    elif issubclass(layer, NormAttention):
        options.pop("block_size", None)
    if issubclass(layer, LightningAttention):
        settings["decay_scale"] = 1 - index / max(1, depth - 1) + 1e-5
    if issubclass(layer, SoftAttention):
        settings["landmark_ratio"] = landmark_ratio
    return bind(layer, attn_options=options, **settings)


class LaViT(VisionTransformer):
    def __init__(
        self,
        attn_kind: str = "softmax",
        rope: bool = False,
        attn_options: dict[str, Any] | None = None,
        attn_backend: str = "auto",
        landmark_ratio: int = 2,
        local_fraction: float = LOCAL_LAYERS_FRACTION,
        **kwargs,
    ):
        layer = get_attn_layer(attn_kind)
        num_prefix_tokens = int(kwargs.get("class_token", True)) + kwargs.get("reg_tokens", 0)
        img, patch = to_2tuple(kwargs.get("img_size", 224)), to_2tuple(kwargs.get("patch_size", 16))
        grid = (img[0] // patch[0], img[1] // patch[1])  # PatchEmbed's grid; other inputs give `hw` or a square
        settings = dict(
            rope=rope,
            num_prefix_tokens=num_prefix_tokens,
            grid_size=grid,
            attn_options=attn_options,
            backend=attn_backend,
        )
        pick = partial(
            layer_for_block,
            depth=kwargs.get("depth", 12),
            settings=settings,
            local_fraction=local_fraction,
            landmark_ratio=landmark_ratio,
        )
        super().__init__(attn_layer=layer, block_fn=partial(LaViTBlock, layer_for_block=pick), **kwargs)
        self.attn_kind = attn_kind


default_cfgs = imagenet_cfgs(
    ("lavit_tiny_patch16_224", "lavit_small_patch16_224", "lavit_base_patch16_224"),
    first_conv="patch_embed.proj",
    pool_size=None,
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
