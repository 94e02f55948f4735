"""The attention layers (one class per kind on KernelAttention) and their token-layout plumbing."""

import pytest
import torch
from timm.layers import Attention
from timm.models.vision_transformer import VisionTransformer

import kernels
from vision.layers import (
    ATTN_KINDS,
    ATTN_LAYERS,
    KernelAttention,
    TokenLayout,
    create_attention,
    get_attn_layer,
    rope_2d,
)
from vision.layers.rope import rope_tables
from vision.layers.tokens import grid_to_tokens, infer_layout, tokens_to_grid

POSITIONAL = ("lightning", "local")  # depend on sequence order, not only on grid positions


def layer(kind, dim=32, heads=2, rope=False, prefix=1, **kw):
    torch.manual_seed(0)
    if kind == "soft":
        kw.setdefault("landmark_ratio", 2)
    return create_attention(kind, dim, heads, qkv_bias=True, rope=rope, num_prefix_tokens=prefix, **kw).eval()


def test_one_layer_class_per_kind():
    assert tuple(ATTN_LAYERS) == ATTN_KINDS == kernels.KINDS
    assert len(set(ATTN_LAYERS.values())) == len(ATTN_KINDS)
    for kind, cls in ATTN_LAYERS.items():
        assert issubclass(cls, KernelAttention) and cls.kind == kind and get_attn_layer(kind) is cls


@pytest.mark.parametrize("kind", ATTN_KINDS)
def test_timm_vision_transformer_takes_each_layer_class(kind):
    """timm's own VisionTransformer builds every block's attention from the class (its `attn_layer=`)."""
    vit = VisionTransformer(
        img_size=32,
        patch_size=8,
        embed_dim=32,
        depth=2,
        num_heads=2,
        class_token=False,
        global_pool="avg",
        attn_layer=ATTN_LAYERS[kind],
    )
    assert all(type(block.attn) is ATTN_LAYERS[kind] for block in vit.blocks)
    assert vit(torch.randn(2, 3, 32, 32)).shape == (2, 1000)


def test_softmax_layer_is_timm_attention():
    ours, theirs = layer("softmax", 64, 4, prefix=1), Attention(64, 4, qkv_bias=True).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 1 + 49, 64)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


@pytest.mark.parametrize("kind", ATTN_KINDS)
@pytest.mark.parametrize("rope", [False, True])
def test_every_kind_runs_forward_and_backward(kind, rope):
    attn = layer(kind, rope=rope).train()
    x = torch.randn(2, 1 + 36, 32, requires_grad=True)
    out = attn(x)
    out.square().mean().backward()
    assert out.shape == x.shape and torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    unused = [n for n, p in attn.named_parameters() if p.grad is None]
    assert not unused, f"parameters that get no gradient (DDP would fail): {unused}"


@pytest.mark.parametrize("kind", ATTN_KINDS)
def test_non_square_grid_given_explicitly(kind):
    """Layers that read positions need the grid of a non-square input; the others take any token count."""
    attn = layer(kind, prefix=0)
    x = torch.randn(2, 6 * 9, 32)
    assert attn(x, hw=(6, 9)).shape == x.shape
    if attn.needs_grid:
        with pytest.raises(ValueError, match="square"):
            attn(x)
    else:
        assert attn(x).shape == x.shape


@pytest.mark.parametrize("kind", [k for k in ATTN_KINDS if k not in POSITIONAL])
def test_token_order_does_not_matter_when_the_layout_says_where_tokens_are(kind):
    """Shuffle the grid tokens and tell the layer their positions (what MAE does): outputs follow the shuffle.
    This checks that LePE, landmark pooling, DWConv(V) and RoPE read positions from the layout."""
    attn = layer(kind, rope=kind != "soft", prefix=1)
    x = torch.randn(2, 1 + 36, 32, dtype=torch.float64)
    attn = attn.double()
    full = attn(x)
    perm = torch.stack([torch.randperm(36), torch.randperm(36)])
    shuffled = torch.cat([x[:, :1], x[:, 1:].gather(1, perm[..., None].expand(-1, -1, 32))], dim=1)
    attn.layout = TokenLayout((6, 6), prefix=1, keep=perm)
    out = attn(shuffled)
    expected = torch.cat([full[:, :1], full[:, 1:].gather(1, perm[..., None].expand(-1, -1, 32))], dim=1)
    assert torch.allclose(out, expected, atol=1e-10)


def test_lepe_is_local():
    """NaLa's LePE adds V's 5×5 neighbourhood: changing a far token's value changes nothing through it."""
    attn = layer("nala", prefix=0)
    with torch.no_grad():
        attn.lepe.weight.normal_()
    v_grid = torch.randn(1, 32, 8, 8)
    lepe = attn.lepe(v_grid.flatten(2).transpose(1, 2).reshape(1, 64, 2, 16).transpose(1, 2), TokenLayout((8, 8)))
    bumped = v_grid.clone()
    bumped[..., 7, 7] += 1.0
    lepe2 = attn.lepe(bumped.flatten(2).transpose(1, 2).reshape(1, 64, 2, 16).transpose(1, 2), TokenLayout((8, 8)))
    changed = (lepe2 - lepe).abs().sum(-1).reshape(8, 8) > 0
    assert changed[5:, 5:].all() and not changed[:5].any() and not changed[:, :5].any()


def test_layout_grid_roundtrip_with_masking():
    layout = TokenLayout((4, 5), keep=torch.tensor([[3, 0, 19], [7, 8, 1]]))
    tokens = torch.randn(2, 3, 6)
    grid = tokens_to_grid(tokens, layout)
    assert grid.shape == (2, 6, 4, 5) and grid[0, :, 0, 3].equal(tokens[0, 0]) and grid[1, :, 0, 1].equal(tokens[1, 2])
    assert torch.isclose(grid.abs().sum(), tokens.abs().sum())  # everything else is zero
    assert torch.equal(grid_to_tokens(grid, layout), tokens)
    assert infer_layout(1 + 49, 1).hw == (7, 7)


def test_rope_2d_angles():
    sin, cos = rope_2d(TokenLayout((3, 4), prefix=1), 8, torch.device("cpu"))
    assert sin.shape == (1, 1, 13, 8)
    assert torch.equal(sin[0, 0, 0], torch.zeros(8)) and torch.equal(cos[0, 0, 0], torch.ones(8))
    # token (row 2, col 1) is grid index 9 (+1 prefix); angles: rows x [1, 1e-4] on the first half, cols on the second
    angles = torch.atan2(sin[0, 0, 10], cos[0, 0, 10])
    expected = torch.tensor([2.0, 2.0, 2e-4, 2e-4, 1.0, 1.0, 1e-4, 1e-4])
    assert torch.allclose(angles, expected, atol=1e-6)


def test_soft_layer_takes_q_and_v_from_a_softmax_checkpoint():
    softmax, soft = layer("softmax"), layer("soft")
    result = soft.load_state_dict(softmax.state_dict(), strict=False)
    q, _, v = softmax.qkv.weight.chunk(3)
    assert torch.equal(soft.qkv.weight, torch.cat([q, v]))
    assert set(result.missing_keys) == {
        "landmark_conv.weight",
        "landmark_norm.weight",
        "landmark_norm.bias",
        "v_conv.weight",
    }


def test_rope_tables_are_rope_2d_and_shared():
    layout = TokenLayout((3, 4), prefix=1)
    sin, cos = rope_tables(layout, 8, torch.device("cpu"), torch.float64)
    ref_sin, ref_cos = rope_2d(layout, 8, torch.device("cpu"))
    assert sin.dtype == torch.float64 and torch.equal(sin, ref_sin.double()) and torch.equal(cos, ref_cos.double())
    assert rope_tables(layout, 8, torch.device("cpu"), torch.float64)[0] is sin  # computed once, not per call
    with torch.inference_mode():  # tables first built under inference mode still serve training
        rope_tables(TokenLayout((5, 5), prefix=1), 8, torch.device("cpu"), torch.float32)
    attn = layer("softmax", rope=True).train()
    x = torch.randn(2, 1 + 25, 32, requires_grad=True)
    attn(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="attn_kind"):
        create_attention("flash", 32, 2)
    with pytest.raises(ValueError, match="attn_drop"):
        create_attention("nala", 32, 2, attn_drop=0.1)
    with pytest.raises(ValueError, match="divisible"):
        create_attention("softmax", 30, 4)
    with pytest.raises(TypeError, match="create_attention"):
        KernelAttention(32, 2)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("kind", ["nala", "mala"])
def test_lepe_reaches_grid_tokens_only(kind, heads):
    """LePE adds V's neighbourhood to grid tokens, never to the class token, with one head or several."""
    attn = layer(kind, heads=heads, prefix=1).double()
    with torch.no_grad():
        attn.lepe.weight.normal_()
    x = torch.randn(2, 1 + 16, 32, dtype=torch.float64)
    with_lepe = attn(x)
    with torch.no_grad():
        attn.lepe.weight.zero_()
        attn.lepe.bias.zero_()
    without = attn(x)
    assert torch.allclose(with_lepe[:, 0], without[:, 0], atol=1e-12)
    assert (with_lepe[:, 1:] - without[:, 1:]).abs().amax(-1).gt(1e-6).all()


@pytest.mark.parametrize("kind", ["nala", "mala"])
def test_lepe_never_writes_into_the_kernels_output(kind):
    """A kernel may return [B, H, N, D] laid out as [B, N, H, D] (SDPA does): merging the heads is then a view, and
    LePE's in-place add must go to a copy, not into the kernel's tensor."""
    attn = layer(kind, prefix=1)
    outputs = []

    def attend(q, k, v, options):
        out = torch.randn(q.shape[0], q.shape[2], q.shape[1], v.shape[-1]).transpose(1, 2)  # [B,N,H,D] memory
        outputs.append((out, out.clone()))
        return out

    attn.attend = attend
    with torch.no_grad():
        attn.lepe.weight.normal_()
        attn(torch.randn(2, 1 + 16, 32))
    out, before = outputs[0]
    assert torch.equal(out, before)
