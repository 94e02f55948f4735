"""HiLaViT's timm hierarchical-model API, as timm's own models (pvt_v2, convnext) have it: forward_intermediates,
prune_intermediate_layers, group_matcher (features_only with feature_cls='getter', layer-wise lr decay), and the
global_pool values checked alike at construction and in reset_classifier."""

import copy

import pytest
import timm
import torch
from timm.models._features import FeatureGetterNet
from timm.models._manipulate import group_parameters
from timm.optim import create_optimizer_v2, param_groups_layer_decay

import vision
from vision.models.hilavit import GLOBAL_POOLS

from .tiny import TINY_HIERARCHICAL

TINY = TINY_HIERARCHICAL | dict(depths=(1, 2, 1, 1), num_classes=1000)
X = torch.randn(2, 3, 64, 96)


def tiny(**kwargs) -> vision.models.HiLaViT:
    torch.manual_seed(0)
    return vision.models.HiLaViT(**{**TINY, **kwargs}).eval()  # eval: BatchNorm's running statistics


@pytest.mark.parametrize("name", ["nalaformer_t", "soft_tiny"])
@torch.no_grad()
def test_forward_intermediates_end_at_forward_features(name):
    model = timm.create_model(name, num_classes=5).eval()
    final, maps = model.forward_intermediates(X)
    assert torch.equal(final, model.forward_features(X))
    assert torch.equal(maps[-1], final)
    info = model.feature_info
    assert [tuple(m.shape) for m in maps] == [
        (2, i["num_chs"], 64 // i["reduction"], 96 // i["reduction"]) for i in info
    ]
    assert torch.equal(model.forward_head(final), model(X))


@torch.no_grad()
def test_forward_intermediates_indices_and_options():
    model = tiny(num_classes=5)
    _, every = model.forward_intermediates(X)
    assert len(every) == 4
    last_two = model.forward_intermediates(X, indices=2, intermediates_only=True)
    assert all(torch.equal(a, b) for a, b in zip(last_two, every[2:], strict=True))
    chosen = model.forward_intermediates(X, indices=[0, -2], intermediates_only=True, norm=True)
    assert all(torch.equal(a, b) for a, b in zip(chosen, [every[0], every[2]], strict=True))
    final, early = model.forward_intermediates(X, indices=[1], stop_early=True)
    assert torch.equal(final, every[1]) and torch.equal(early[0], every[1])
    with pytest.raises(ValueError, match="output_fmt"):
        model.forward_intermediates(X, output_fmt="NHWC")


@pytest.mark.parametrize("out_indices", [(0, 1, 2, 3), (1, 2)])
@torch.no_grad()
def test_features_only_getter(out_indices):
    torch.manual_seed(0)
    full = timm.create_model("nalaformer_t").eval()
    torch.manual_seed(0)
    getter = timm.create_model("nalaformer_t", features_only=True, feature_cls="getter", out_indices=out_indices)
    getter.eval()
    assert isinstance(getter, FeatureGetterNet)
    maps = getter(X)
    assert [m.shape[1] for m in maps] == getter.feature_info.channels()
    assert [64 // m.shape[2] for m in maps] == getter.feature_info.reduction()
    expected = full.forward_intermediates(X, indices=list(out_indices), intermediates_only=True)
    assert all(torch.equal(a, b) for a, b in zip(maps, expected, strict=True))
    assert len(getter.model.stages) == max(out_indices) + 1  # the stages after the last tap are pruned


@torch.no_grad()
def test_prune_intermediate_layers_keeps_the_features():
    model = tiny(num_classes=5, head_hidden_size=24)
    full = copy.deepcopy(model)
    assert model.prune_intermediate_layers([0, -2]) == [0, 2]
    assert len(model.stages) == 3 and model.num_features == model.head_hidden_size == 32
    kept = model.forward_intermediates(X, indices=[0, 2], intermediates_only=True)
    expected = full.forward_intermediates(X, indices=[0, 2], intermediates_only=True)
    assert all(torch.equal(a, b) for a, b in zip(kept, expected, strict=True))
    assert torch.equal(model(X), expected[-1])  # the head is gone: the last kept stage's map, unpooled
    model.reset_classifier(3, "avg")  # a new classifier fits the pruned features
    assert model(X).shape == (2, 3)


@torch.no_grad()
def test_prune_without_head_or_stages_changes_nothing():
    model = tiny(num_classes=5)
    logits = model(X)
    assert model.prune_intermediate_layers(4, prune_head=False) == [0, 1, 2, 3]
    assert torch.equal(model(X), logits)


@pytest.mark.parametrize("coarse", [True, False])
def test_group_matcher_groups_stem_then_stages(coarse):
    model = timm.create_model("nalaformer_t", num_classes=5)  # depths 2, 2, 6, 2
    groups = list(group_parameters(model, model.group_matcher(coarse=coarse)).values())
    assert len(groups) == 1 + (4 if coarse else 12) + 1  # the stem, stages or blocks, then the head
    assert sum(len(names) for names in groups) == len(list(model.named_parameters()))
    assert all(n.startswith("stem.") for n in groups[0])
    assert all(n.startswith("head") for n in groups[-1])
    if coarse:
        assert all(n.startswith(f"stages.{i}.") for i in range(4) for n in groups[1 + i])
    else:  # a stage's patch merging goes with its first block
        assert {n.split(".")[2] for n in groups[3]} == {"downsample", "blocks"}
        assert all(n.startswith(("stages.1.downsample.", "stages.1.blocks.0.")) for n in groups[3])


def test_layer_decay_param_groups():
    model = timm.create_model("nalaformer_t", num_classes=5)
    groups = param_groups_layer_decay(model, weight_decay=0.05, layer_decay=0.5)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    stem, head = model.stem.layers[0].weight, model.head.weight
    deepest = model.stages[3].blocks[1].attn.qkv.weight
    assert scale[id(stem)] < scale[id(model.stages[0].blocks[0].attn.qkv.weight)] < scale[id(deepest)]
    assert scale[id(head)] == 1.0 and scale[id(deepest)] == 0.5
    create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75)


@pytest.mark.parametrize("head_hidden_size", [24, None])
@pytest.mark.parametrize("global_pool", GLOBAL_POOLS)
@torch.no_grad()
def test_global_pool_at_construction(global_pool, head_hidden_size):
    model = tiny(num_classes=5, global_pool=global_pool, head_hidden_size=head_hidden_size)
    features = model.forward_features(X)
    assert features.shape == (2, 32, 2, 3)
    width = head_hidden_size or 32
    projected = model.head_proj(features)
    pooled = {
        "avg": projected.mean((2, 3)),
        "max": projected.amax((2, 3)),
        "avgmax": (projected.mean((2, 3)) + projected.amax((2, 3))) / 2,
        "": projected,
    }[global_pool]
    pre_logits = model.forward_head(features, pre_logits=True)
    logits = model(X)
    if global_pool:
        assert pre_logits.shape == (2, width) and logits.shape == (2, 5)
        expected = model.head(model.head_norm(pooled))
    else:  # no pooling: the norm and the classifier run at each position
        assert pre_logits.shape == (2, width, 2, 3) and logits.shape == (2, 5, 2, 3)
        expected = model.head(model.head_norm(pooled.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
    torch.testing.assert_close(logits, expected)
    headless = tiny(num_classes=0, global_pool=global_pool, head_hidden_size=head_hidden_size)
    assert headless(X).shape == ((2, width) if global_pool else (2, width, 2, 3))


@pytest.mark.parametrize("global_pool", GLOBAL_POOLS)
@torch.no_grad()
def test_global_pool_through_create_model_and_reset_classifier(global_pool):
    model = timm.create_model("nalaformer_t", global_pool=global_pool, num_classes=5).eval()
    assert model(X).shape == ((2, 5) if global_pool else (2, 5, 2, 3))
    model.reset_classifier(0)
    assert model(X).shape == ((2, 1024) if global_pool else (2, 1024, 2, 3))
    other = tiny(num_classes=5)
    other.reset_classifier(4, global_pool)
    assert other.global_pool == global_pool
    assert other(X).shape == ((2, 4) if global_pool else (2, 4, 2, 3))


@pytest.mark.parametrize("global_pool", ["catavgmax", "fast", "token", "map", "mean"])
def test_unknown_global_pool_is_refused_alike(global_pool):
    with pytest.raises(ValueError, match="global_pool: expected one of"):
        timm.create_model("soft_tiny", global_pool=global_pool, num_classes=5)
    model = tiny(num_classes=5)
    with pytest.raises(ValueError, match="global_pool: expected one of"):
        model.reset_classifier(3, global_pool)
    assert model.global_pool == "avg"
    model.reset_classifier(3)  # None keeps the model's pool
    assert model.global_pool == "avg"
