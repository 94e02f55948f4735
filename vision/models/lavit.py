"""LaViT: timm's VisionTransformer with `attn_layer=` one of our attention classes, so any kind drops into a ViT.

At attn_kind="softmax" the parameter names, shapes and outputs are timm's `vit_*_patch16_224`, so timm
and MAE checkpoints load strictly; any other kind loads the same checkpoint and initialises the rest.

Input sizes: every forward hands each block the grid its patch embedding produced for this input (a TokenLayout:
the grid, the prefix tokens and, under timm's patch dropout, the kept patches' positions), so RoPE, LePE and
SOFT's pooling see the real grid with `dynamic_img_size`, `dynamic_img_pad`, after `set_input_size`, and under
`patch_drop_rate`. Layers that read no positions ignore it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from timm.layers import PatchDropout, to_2tuple
from timm.layers.patch_dropout import patch_dropout_forward
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models.vision_transformer import Block, VisionTransformer, checkpoint_filter_fn
from torch import Tensor, nn

from ..layers import KernelAttention, TokenLayout, bind, get_attn_layer
from ..layers.attention import LightningAttention, LocalAttention, NormAttention, SoftAttention
from .pretrained_cfg import imagenet_cfgs, local_weights_only, matching_filter

LOCAL_LAYERS_FRACTION = 0.5  # TransNormer: DiagAttention (local) in the first half, NormAttention after


class LaViTBlock(Block):
    """timm's Block, whose attention layer gets the model's settings and its place in the stack.

    timm builds every block with the same `attn_layer` class and hands a block its index (`depth`) only when the
    layer is DiffAttention; `layer_for_block` turns the model's layer class into this block's bound class.
    """

    def __init__(self, *args, attn_layer: type[KernelAttention], depth: int = 0, layer_for_block, **kwargs):
        super().__init__(*args, attn_layer=layer_for_block(attn_layer, depth), depth=depth, **kwargs)

    def forward(
        self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False, layout: TokenLayout | None = None
    ) -> Tensor:
        """timm's Block.forward, handing the attention layer where the tokens sit (`layout`, from LaViT's forward;
        None: the layer's own fallback, e.g. MAE's `attn.layout`)."""
        attn = self.attn(self.norm1(x), attn_mask=attn_mask, is_causal=is_causal, layout=layout)
        x = x + self.drop_path1(self.ls1(attn))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


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
        grid = (img[0] // patch[0], img[1] // patch[1])  # fallback for calls without a layout (forward gives one)
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

    def set_input_size(self, img_size=None, patch_size=None) -> None:
        """timm's, and the attention layers' fallback grid (for calls without a layout) follows the new size."""
        super().set_input_size(img_size=img_size, patch_size=patch_size)
        grid = tuple(self.patch_embed.grid_size)
        for module in self.blocks.modules():
            if isinstance(module, KernelAttention):
                module.default_hw = grid

    def embed_tokens(self, x: Tensor) -> tuple[Tensor, TokenLayout]:
        """Images [B, C, H, W] -> the tokens the blocks take and where they sit: the grid the patch embedding
        produced for this input (padded with `dynamic_img_pad`) and, under patch dropout, the kept patches."""
        hw = tuple(self.patch_embed.dynamic_feat_size((x.shape[-2], x.shape[-1])))
        x = self._pos_embed(self.patch_embed(x))
        keep = None
        if isinstance(self.patch_drop, PatchDropout):  # timm's, with the kept positions (None when it is off)
            drop = self.patch_drop
            x, keep = patch_dropout_forward(x, drop.prob, drop.num_prefix_tokens, drop.ordered, drop.training)
        else:
            x = self.patch_drop(x)
        return self.norm_pre(x), TokenLayout(hw, self.num_prefix_tokens, keep)

    def _block(
        self, block: nn.Module, x: Tensor, layout: TokenLayout, attn_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        if attn_mask is None and not is_causal and self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint(partial(block, layout=layout), x)
        return block(x, attn_mask=attn_mask, is_causal=is_causal, layout=layout)

    def forward_features(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x, layout = self.embed_tokens(x)
        for block in self.blocks:
            x = self._block(block, x, layout, attn_mask, is_causal)
        return self.norm(x)

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        return_prefix_tokens: bool = False,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
        output_dict: bool = False,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]] | dict[str, Any]:
        """timm's VisionTransformer.forward_intermediates (same arguments and outputs), with the grid handed to the
        blocks as in forward_features."""
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt: expected 'NCHW' or 'NLC', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        x, layout = self.embed_tokens(x)
        intermediates = []
        for i, block in enumerate(self.blocks[: max_index + 1] if stop_early else self.blocks):
            x = self._block(block, x, layout, attn_mask, is_causal)
            if i in take_indices:
                intermediates.append(self.norm(x) if norm else x)

        prefix = self.num_prefix_tokens
        prefix_tokens = [y[:, :prefix] for y in intermediates] if prefix else None
        intermediates = [y[:, prefix:] for y in intermediates]
        if output_fmt == "NCHW":
            H, W = layout.hw
            intermediates = [y.unflatten(1, (H, W)).permute(0, 3, 1, 2).contiguous() for y in intermediates]

        if output_dict:
            result: dict[str, Any] = {"image_intermediates": intermediates}
            if prefix_tokens is not None and return_prefix_tokens:
                result["image_intermediates_prefix"] = prefix_tokens
            if not intermediates_only:
                result["image_features"] = self.norm(x)
            return result
        if return_prefix_tokens and prefix_tokens is not None:
            intermediates = list(zip(intermediates, prefix_tokens, strict=True))
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates


default_cfgs = imagenet_cfgs(
    ("lavit_tiny_patch16_224", "lavit_small_patch16_224", "lavit_base_patch16_224"),
    first_conv="patch_embed.proj",
    pool_size=None,
)


def _create(variant: str, pretrained: bool, **kwargs) -> LaViT:
    local_weights_only(variant, pretrained, kwargs)
    out_indices = kwargs.pop("out_indices", 3)
    return build_model_with_cfg(
        LaViT,
        variant,
        pretrained,
        pretrained_filter_fn=matching_filter(checkpoint_filter_fn),
        pretrained_strict=False,  # the filter keeps only what fits, and logs what it left initialised
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
