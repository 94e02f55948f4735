"""HiLaViT: a four-stage hierarchical ViT with a chosen attention kind per stage (NaLaFormer's skeleton).

Conv stem (stride 4), then four stages; stages 2-4 open with a 3×3 stride-2 conv + BN (patch merging).
Each block: x += CPE(x); x += LS·Attn(LN(x)); x += CPE(x); x += LS·FFN(LN(x)), with 3×3 depth-wise
conv position encodings and an FFN whose hidden layer has a residual depth-wise conv. The attention is the
stage's kind's layer class (optional 2-D RoPE). Presets: nalaformer_t/s and mala_t (linear attention in stages
1-2, softmax in 3-4, a 1×1 projection head), soft_tiny (SOFT in stages 1-3).

timm's hierarchical-model API as its own models have it (pvt_v2, convnext): `forward_intermediates`,
`prune_intermediate_layers`, `group_matcher`, so `features_only=True` works with either feature class and
`timm.optim.param_groups_layer_decay` splits the stem and the stages. `global_pool` is one of GLOBAL_POOLS,
checked when the model is built and by `reset_classifier`; `''` keeps the map and classifies each position.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import DropPath, LayerScale, trunc_normal_
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from torch import Tensor, nn

from ..layers import get_attn_layer
from ..layers.attention import SoftAttention
from .pretrained_cfg import imagenet_cfgs, local_weights_only, matching_filter

GLOBAL_POOLS = ("avg", "max", "avgmax", "")  # timm's SelectAdaptivePool2d names; '' = no pooling


def check_global_pool(global_pool: str) -> str:
    """`global_pool` if it is one of GLOBAL_POOLS, else a ValueError (construction and reset_classifier)."""
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"global_pool: expected one of {GLOBAL_POOLS}, got {global_pool!r}")
    return global_pool


def _pool(x: Tensor, global_pool: str) -> Tensor:
    """[B, C, H, W] -> [B, C] (avg, max, avgmax = half of each, as timm's), or unchanged for ''."""
    if global_pool == "avg":
        return x.mean(dim=(2, 3))
    if global_pool == "max":
        return x.amax(dim=(2, 3))
    if global_pool == "avgmax":
        return 0.5 * (x.mean(dim=(2, 3)) + x.amax(dim=(2, 3)))
    return x


class ConvStem(nn.Module):
    """3→C/2 (3×3 s2), two 3×3 s1, then →C (3×3 s2): stride 4, BN after each conv, GELU between."""

    def __init__(self, in_chans: int, dim: int):
        super().__init__()
        half = dim // 2
        layers: list[nn.Module] = []
        for i, (cin, cout, stride) in enumerate(
            [(in_chans, half, 2), (half, half, 1), (half, half, 1), (half, dim, 2)]
        ):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
            if i < 3:
                layers.append(nn.GELU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class ConvFFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        x = self.act(self.fc1(x))
        return self.fc2(x + _conv_tokens(self.dwconv, x, hw))


def _conv_tokens(conv: nn.Module, x: Tensor, hw: tuple[int, int]) -> Tensor:
    B, N, C = x.shape
    return conv(x.transpose(1, 2).reshape(B, C, *hw)).flatten(2).transpose(1, 2)


class HiLaBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_kind: str,
        mlp_ratio: float,
        drop_path: float,
        layer_scale: float | None,
        rope: bool,
        landmark_ratio: int,
        v_conv_size: int,
    ):
        super().__init__()
        self.cpe1 = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        layer = get_attn_layer(attn_kind)
        pooling = (
            dict(landmark_ratio=landmark_ratio, v_conv_size=v_conv_size) if issubclass(layer, SoftAttention) else {}
        )
        self.attn = layer(dim, num_heads, qkv_bias=True, rope=rope, **pooling)
        self.ls1 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.cpe2 = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = ConvFFN(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        x = x + _conv_tokens(self.cpe1, x, hw)
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x), hw=hw)))
        x = x + _conv_tokens(self.cpe2, x, hw)
        return x + self.drop_path(self.ls2(self.ffn(self.norm2(x), hw)))


class HiLaStage(nn.Module):
    """NCHW in, NCHW out: optional patch merging, then blocks over the tokens."""

    def __init__(self, in_dim: int, dim: int, depth: int, downsample: bool, drop_paths: Sequence[float], **block):
        super().__init__()
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_dim, dim, 3, 2, 1, bias=False), nn.BatchNorm2d(dim))
            if downsample
            else nn.Identity()
        )
        self.blocks = nn.ModuleList(HiLaBlock(dim, drop_path=dp, **block) for dp in drop_paths)
        self.grad_checkpointing = False

    def forward(self, x: Tensor) -> Tensor:
        x = self.downsample(x)
        B, C, H, W = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                tokens = torch.utils.checkpoint.checkpoint(block, tokens, (H, W), use_reentrant=False)
            else:
                tokens = block(tokens, (H, W))
        return tokens.transpose(1, 2).reshape(B, C, H, W)


class HiLaViT(nn.Module):
    def __init__(
        self,
        embed_dims: Sequence[int] = (64, 128, 256, 512),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (1, 2, 4, 8),
        attn_kinds: Sequence[str] = ("nala", "nala", "softmax", "softmax"),
        mlp_ratios: float | Sequence[float] = 4.0,
        landmark_ratios: Sequence[int] = (8, 4, 2, 1),
        v_conv_sizes: Sequence[int] = (9, 5, 3, 3),
        head_hidden_size: int | None = 1024,
        rope: bool = True,
        layer_scale: float | None = 1.0,
        drop_path_rate: float = 0.1,
        drop_rate: float = 0.0,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        attn_kind: str | None = None,
    ):
        super().__init__()
        if attn_kind is not None:  # one kind for the stages that use linear attention
            attn_kinds = [attn_kind if k != "softmax" else k for k in attn_kinds]
        mlp_ratios = [mlp_ratios] * 4 if isinstance(mlp_ratios, (int, float)) else list(mlp_ratios)
        for name, values in (
            ("embed_dims", embed_dims),
            ("depths", depths),
            ("num_heads", num_heads),
            ("attn_kinds", attn_kinds),
            ("mlp_ratios", mlp_ratios),
        ):
            if len(values) != 4:
                raise ValueError(f"{name}: expected 4 values (one per stage), got {list(values)}")
        self.num_classes = num_classes
        self.global_pool = check_global_pool(global_pool)
        self.attn_kinds = tuple(attn_kinds)
        self.stem = ConvStem(in_chans, embed_dims[0])
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        stages, start = [], 0
        for i in range(4):
            stages.append(
                HiLaStage(
                    embed_dims[max(i - 1, 0)],
                    embed_dims[i],
                    depths[i],
                    downsample=i > 0,
                    drop_paths=rates[start : start + depths[i]],
                    num_heads=num_heads[i],
                    attn_kind=attn_kinds[i],
                    mlp_ratio=mlp_ratios[i],
                    layer_scale=layer_scale,
                    rope=rope,
                    landmark_ratio=landmark_ratios[i],
                    v_conv_size=v_conv_sizes[i],
                )
            )
            start += depths[i]
        self.stages = nn.Sequential(*stages)
        self.feature_info = [dict(num_chs=embed_dims[i], reduction=4 * 2**i, module=f"stages.{i}") for i in range(4)]
        self.num_features = embed_dims[-1]
        if head_hidden_size:  # NaLaFormer's head: 1×1 projection, BN, SiLU, then pool
            self.head_proj = nn.Sequential(
                nn.Conv2d(embed_dims[-1], head_hidden_size, 1, bias=False), nn.BatchNorm2d(head_hidden_size), nn.SiLU()
            )
            self.head_hidden_size = head_hidden_size
        else:  # a final LayerNorm over the pooled features
            self.head_proj = nn.Identity()
            self.head_hidden_size = embed_dims[-1]
        self.head_norm = nn.Identity() if head_hidden_size else nn.LayerNorm(embed_dims[-1], eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise lr decay: the stem, then each stage (coarse) or each block, with a
        stage's patch merging in its first block's group; the head is left to the last group, as timm does."""
        return dict(
            stem=r"^stem",
            blocks=r"^stages\.(\d+)"
            if coarse
            else [(r"^stages\.(\d+)\.downsample", (0,)), (r"^stages\.(\d+)\.blocks\.(\d+)", None)],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for stage in self.stages:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            self.global_pool = check_global_pool(global_pool)
        self.num_classes = num_classes
        self.head = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """The stages' outputs (`feature_info`), as timm's hierarchical models give them.

        Args:
            x: [B, 3, H, W] images.
            indices: the last n stages if an int, all if None, else these stages (negative from the end).
            norm: accepted for timm's API; the stages end without a norm (the head's norm follows pooling).
            stop_early: stop after the last stage asked for.
            output_fmt: only 'NCHW'.
            intermediates_only: return only the intermediates.

        Returns:
            The intermediates, or (forward_features' output, the intermediates).
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt: expected 'NCHW', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[: max_index + 1]
        intermediates = []
        x = self.stem(x)
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in take_indices:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last of `indices` and, with `prune_head` or when stages went, the head
        (projection, norm, classifier; no pooling). Returns the kept indices, counted from the first stage."""
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        prune_end = max_index < len(self.stages) - 1
        self.stages = self.stages[: max_index + 1]
        if prune_end:  # features now end at the last kept stage; the head is sized for the last one, so it goes
            self.num_features = self.feature_info[max_index]["num_chs"]
        if prune_head or prune_end:
            self.head_proj, self.head_norm = nn.Identity(), nn.Identity()
            self.head_hidden_size = self.num_features
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] -> [B, C4, H/32, W/32]."""
        return self.stages(self.stem(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """[B, C4, h, w] -> [B, classes] pooled, or [B, classes, h, w] per position when global_pool is ''."""
        x = _pool(self.head_proj(x), self.global_pool)
        if x.ndim == 4:  # no pooling: the norm and the classifier run on each position's channels
            x = x.permute(0, 2, 3, 1)
        x = self.head_drop(self.head_norm(x))
        if not pre_logits:
            x = self.head(x)
        return x.permute(0, 3, 1, 2) if x.ndim == 4 else x

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = imagenet_cfgs(("nalaformer_t", "nalaformer_s", "mala_t", "soft_tiny"), first_conv="stem.layers.0")


def _create(variant: str, pretrained: bool, defaults: dict, **kwargs) -> HiLaViT:
    """The variant with `defaults` (its shape), overridden by the caller's `kwargs`."""
    kwargs = {**defaults, **kwargs}
    local_weights_only(variant, pretrained, kwargs)
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    return build_model_with_cfg(
        HiLaViT,
        variant,
        pretrained,
        pretrained_filter_fn=matching_filter(),
        pretrained_strict=False,  # the filter keeps only what fits, and logs what it left initialised
        feature_cfg=dict(out_indices=out_indices, flatten_sequential=True),
        **kwargs,
    )


NALAFORMER_T = dict(
    embed_dims=(64, 128, 256, 512), depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8), mlp_ratios=4.0, drop_path_rate=0.1
)


def _linear_then_softmax(kind: str) -> tuple[str, ...]:
    """NaLaFormer's split: linear attention in the two high-resolution stages, softmax in the last two."""
    return (kind, kind, "softmax", "softmax")


@register_model
def nalaformer_t(pretrained: bool = False, **kwargs) -> HiLaViT:
    """NaLaFormer-T shape (15M): NaLa in stages 1-2, softmax in 3-4."""
    return _create("nalaformer_t", pretrained, dict(NALAFORMER_T, attn_kinds=_linear_then_softmax("nala")), **kwargs)


@register_model
def nalaformer_s(pretrained: bool = False, **kwargs) -> HiLaViT:
    """NaLaFormer-S shape (26M): NaLa in stages 1-2, softmax in 3-4.

    NaLaFormer's softmax stages also carry the NaLa gate and LePE; ours are the plain (timm) softmax layer,
    1.8M fewer parameters, which an FFN ratio of 4 (paper: 3.5) gives back: 25.6M against the paper's 26M.
    """
    shape = dict(embed_dims=(64, 128, 320, 512), depths=(3, 5, 9, 3), num_heads=(1, 2, 5, 8), drop_path_rate=0.15)
    return _create(
        "nalaformer_s", pretrained, dict(shape, mlp_ratios=4.0, attn_kinds=_linear_then_softmax("nala")), **kwargs
    )


@register_model
def mala_t(pretrained: bool = False, **kwargs) -> HiLaViT:
    """NaLaFormer-T's shape with MALA attention in stages 1-2."""
    return _create("mala_t", pretrained, dict(NALAFORMER_T, attn_kinds=_linear_then_softmax("mala")), **kwargs)


@register_model
def soft_tiny(pretrained: bool = False, **kwargs) -> HiLaViT:
    """SOFT-Tiny shape (13M): SOFT in stages 1-3 (landmark pooling 8/4/2, DWConv(V) 9/5/3), softmax in 4."""
    args = dict(
        embed_dims=(64, 128, 320, 512),
        depths=(1, 2, 3, 2),
        num_heads=(2, 4, 10, 16),
        mlp_ratios=4.0,
        attn_kinds=("soft", "soft", "soft", "softmax"),
        landmark_ratios=(8, 4, 2, 1),
        v_conv_sizes=(9, 5, 3, 3),
        head_hidden_size=None,
        rope=False,
        layer_scale=None,
        drop_path_rate=0.1,
    )
    return _create("soft_tiny", pretrained, args, **kwargs)
