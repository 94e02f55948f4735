"""LaViT's attention layers see the grid the patch embedding produced for each input: non-square inputs with
dynamic_img_size, set_input_size, dynamic_img_pad and patch dropout, each against an independent reference
(timm's own ViT, or a LaViT built at that size holding the same weights)."""

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

from vision import ATTN_KINDS
from vision.layers import create_attention

TINY = dict(depth=2, num_classes=7)
# Kinds whose layers read the grid: RoPE for every kind, LePE (nala, mala), landmark pooling and DWConv(V) (soft).
# `local` and `norm` (local in its first half) get small blocks so that the blocks split the grid.
GRID_MODELS = {
    "nala-rope": dict(attn_kind="nala", rope=True),
    "mala": dict(attn_kind="mala"),
    "mala-rope": dict(attn_kind="mala", rope=True),
    "soft": dict(attn_kind="soft"),
    "local-rope": dict(attn_kind="local", rope=True, attn_options={"block_size": 8}),
    "norm-rope": dict(attn_kind="norm", rope=True, attn_options={"block_size": 8}),
    "lightning-rope": dict(attn_kind="lightning", rope=True),
    "softmax-rope": dict(attn_kind="softmax", rope=True),
}


def lavit(img_size, seed=0, **kwargs):
    torch.manual_seed(seed)
    return timm.create_model("lavit_tiny_patch16_224", img_size=img_size, **TINY, **kwargs).eval()


def images(h, w, batch=2):
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(1))


def state_at(model, grid):
    """model's weights with its position embedding resampled to `grid`, as timm's dynamic_img_size does."""
    state = dict(model.state_dict())
    state["pos_embed"] = resample_abs_pos_embed(
        state["pos_embed"], new_size=grid, old_size=model.patch_embed.grid_size, num_prefix_tokens=1
    )
    return state


def assert_close(a, b):
    assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5), (a - b).abs().max()


def assert_same_intermediates(model, reference, x, shape):
    """forward_intermediates' NCHW maps, each of `shape`, equal to the reference's."""
    for a, b in zip(model.forward_intermediates(x)[1], reference.forward_intermediates(x)[1], strict=True):
        assert a.shape == shape
        assert_close(a, b)


def assert_same_outputs(model, reference, x, reference_x=None):
    """Every token's features and the logits (SOFT's class token hardly depends on the grid at initialisation, so
    the logits alone would not show a wrong grid)."""
    reference_x = x if reference_x is None else reference_x
    features, expected = model.forward_features(x), reference.forward_features(reference_x)
    assert_close(features, expected)
    assert_close(model.forward_head(features), reference.forward_head(expected))


@pytest.mark.parametrize("img_size", [64, (64, 96)])
def test_softmax_on_a_non_square_input_is_timms_vit(img_size):
    """attn_kind="softmax" without RoPE is timm's ViT: a 64x96 input through dynamic_img_size gives timm's logits
    and intermediates (the old code raised 'not a square grid' at img_size=64)."""
    ours = lavit(img_size, dynamic_img_size=True)
    theirs = VisionTransformer(
        img_size=img_size, patch_size=16, embed_dim=192, num_heads=3, dynamic_img_size=True, **TINY
    ).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = images(64, 96)
    with torch.no_grad():
        assert_same_outputs(ours, theirs, x)
        assert_same_intermediates(ours, theirs, x, (2, 192, 4, 6))


@pytest.mark.parametrize("model", GRID_MODELS.values(), ids=GRID_MODELS.keys())
@pytest.mark.parametrize("img_size", [64, (64, 96)])
def test_dynamic_size_input_is_a_model_built_at_that_size(model, img_size):
    """A 96x64 input (grid 6x4) to a dynamic_img_size model gives the logits and intermediates of a model built at
    96x64 with the same weights. At img_size=(64, 96) the old code ran its layers on a 4x6 grid (same token count)."""
    dynamic = lavit(img_size, dynamic_img_size=True, **model)
    fixed = lavit((96, 64), seed=1, **model)
    fixed.load_state_dict(state_at(dynamic, (6, 4)), strict=True)
    x = images(96, 64)
    with torch.no_grad():
        assert_same_outputs(dynamic, fixed, x)
        assert_same_intermediates(dynamic, fixed, x, (2, 192, 6, 4))
        dynamic.set_grad_checkpointing(True)
        assert_same_outputs(dynamic, fixed, x)


@pytest.mark.parametrize("model", [dict(attn_kind="softmax"), *GRID_MODELS.values()], ids=["softmax", *GRID_MODELS])
@pytest.mark.parametrize(("img_size", "new_size"), [(64, (64, 96)), ((64, 96), (96, 64))])
def test_set_input_size_is_a_model_built_at_that_size(model, img_size, new_size):
    resized = lavit(img_size, **model)
    resized.set_input_size(img_size=new_size)
    fixed = lavit(new_size, seed=1, **model)
    fixed.load_state_dict(resized.state_dict(), strict=True)
    x = images(*new_size)
    with torch.no_grad():
        assert_same_outputs(resized, fixed, x)


@pytest.mark.parametrize("model", [dict(attn_kind="softmax"), *GRID_MODELS.values()], ids=["softmax", *GRID_MODELS])
def test_dynamic_img_pad_uses_the_padded_grid(model):
    """A 64x72 input with dynamic_img_pad is zero-padded to 64x80 (grid 4x5): the output is that of a model built at
    64x80 on the zero-padded image."""
    padded = lavit(64, dynamic_img_size=True, dynamic_img_pad=True, **model)
    fixed = lavit((64, 80), seed=1, **model)
    fixed.load_state_dict(state_at(padded, (4, 5)), strict=True)
    x = images(64, 72)
    with torch.no_grad():
        assert_same_outputs(padded, fixed, x, F.pad(x, (0, 8)))
        assert padded.forward_intermediates(x, indices=1)[1][0].shape == (2, 192, 4, 5)


ORDER_FREE = {k: v for k, v in GRID_MODELS.items() if v["attn_kind"] not in ("local", "norm", "lightning")}


@pytest.mark.parametrize("model", ORDER_FREE.values(), ids=ORDER_FREE.keys())
def test_patch_dropout_tells_the_layers_where_the_kept_patches_are(model):
    """timm's PatchDropout keeps a random subset of the patches (in random order unless `ordered`). The layers are
    told the kept patches' grid positions, so for kinds that do not read the sequence order the output is the same
    whatever order the kept patches come in (the old code took them for a small square grid)."""
    net = lavit((64, 96), patch_drop_rate=0.5, **model).train()  # no other dropout: train only drops patches
    x = images(64, 96)
    outputs = []
    for ordered in (False, True):
        net.patch_drop.ordered = ordered
        torch.manual_seed(3)  # the same kept patches, in another order
        with torch.no_grad():
            outputs.append(net.forward_features(x)[:, :1])  # the class token (the other tokens change order)
    assert_close(outputs[0], outputs[1])
    net.patch_drop.ordered = False
    torch.manual_seed(4)
    with torch.no_grad():
        assert not torch.allclose(net.forward_features(x)[:, :1], outputs[0])  # another subset: dropout is on


@pytest.mark.parametrize("kind", ATTN_KINDS)
@pytest.mark.parametrize("rope", [False, True])
def test_only_layers_that_read_positions_need_a_grid(kind, rope):
    """Without RoPE, only nala, mala (LePE) and soft (landmark pooling, DWConv(V)) read the grid; the other kinds
    take any token count without one (their hooks get layout=None)."""
    attn = create_attention(kind, 32, 2, rope=rope, num_prefix_tokens=1).eval()
    assert attn.needs_grid == (rope or kind in ("nala", "mala", "soft"))
    x = torch.randn(2, 1 + 6 * 9, 32)
    assert attn(x, hw=(6, 9)).shape == x.shape
    if attn.needs_grid:
        with pytest.raises(ValueError, match="square"):
            attn(x)
    else:
        assert torch.equal(attn(x), attn(x, hw=(6, 9)))
