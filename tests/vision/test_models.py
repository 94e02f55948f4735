"""timm registration, timm checkpoint compatibility, presets and the timm model API."""

import pytest
import timm
import torch

import kernels
import vision
from vision import ATTN_KINDS

SIZES = {"tiny": "vit_tiny_patch16_224", "small": "vit_small_patch16_224", "base": "vit_base_patch16_224"}
PAPER_PARAMS = {"nalaformer_t": 15e6, "nalaformer_s": 26e6, "soft_tiny": 13e6}


def test_list_models():
    assert vision.list_models() == sorted(
        [f"lavit_{s}_patch16_224" for s in SIZES]
        + ["nalaformer_t", "nalaformer_s", "mala_t", "soft_tiny"]
        + ["resnet18_reid", "resnet50_reid", "resnet_reid_tiny"]
    )


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_softmax_lavit_is_timm_vit(size):
    """Same names and shapes; a timm state dict loads strictly and the logits agree (random init, no download)."""
    torch.manual_seed(0)
    theirs = timm.create_model(SIZES[size]).eval()
    ours = timm.create_model(f"lavit_{size}_patch16_224", attn_kind="softmax").eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max() < 1e-4


def test_base_names_and_shapes_match_timm():
    theirs = timm.create_model("vit_base_patch16_224", pretrained=False)
    ours = timm.create_model("lavit_base_patch16_224")
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("kind", ATTN_KINDS)
def test_softmax_checkpoint_converts_to_every_kind(kind, tmp_path):
    torch.save({"model": timm.create_model("vit_tiny_patch16_224").state_dict()}, tmp_path / "vit.pth")
    model = timm.create_model("lavit_tiny_patch16_224", attn_kind=kind, rope=True)
    report = vision.load_checkpoint(model, tmp_path / "vit.pth")
    assert not report.skipped
    extra = {
        "nala": {"gate", "lepe", "out_norm"},
        "mala": {"gate", "lepe"},
        "lightning": {"gate", "out_norm"},
        "soft": {"landmark_conv", "landmark_norm", "v_conv"},
    }.get(kind, set())
    assert {key.split(".")[3] for key in report.missing} == extra
    assert torch.isfinite(model(torch.randn(1, 3, 224, 224))).all()


def test_norm_uses_local_attention_in_the_first_half():
    model = timm.create_model("lavit_tiny_patch16_224", attn_kind="norm")
    assert [b.attn.kind for b in model.blocks] == ["local"] * 6 + ["norm"] * 6


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_preset_parameter_counts_within_5_percent(name):
    count = sum(p.numel() for p in timm.create_model(name).parameters())
    assert abs(count / PAPER_PARAMS[name] - 1) < 0.05, count


def test_mala_t_is_nalaformer_t_shape_with_mala():
    mala, nala = timm.create_model("mala_t"), timm.create_model("nalaformer_t")
    assert mala.attn_kinds == ("mala", "mala", "softmax", "softmax")
    assert [s.blocks[0].attn.qkv.in_features for s in mala.stages] == [
        s.blocks[0].attn.qkv.in_features for s in nala.stages
    ]


@pytest.mark.parametrize("name", ["nalaformer_t", "mala_t", "soft_tiny"])
def test_timm_model_api(name):
    model = timm.create_model(name, num_classes=7).eval()
    x = torch.randn(2, 3, 128, 160)  # any multiple of 32, not only 224
    features = model.forward_features(x)
    assert features.shape == (2, 512, 4, 5)
    assert model.forward_head(features, pre_logits=True).shape == (2, model.head_hidden_size)
    assert model(x).shape == (2, 7)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    backbone = timm.create_model(name, features_only=True)
    maps = backbone(x)
    assert [m.shape[1] for m in maps] == backbone.feature_info.channels()
    assert [128 // m.shape[2] for m in maps] == backbone.feature_info.reduction() == [4, 8, 16, 32]


def test_lavit_features_only():
    backbone = timm.create_model("lavit_tiny_patch16_224", attn_kind="mala", features_only=True, out_indices=(5, 11))
    assert [m.shape for m in backbone(torch.randn(1, 3, 224, 224))] == [(1, 192, 14, 14)] * 2


@pytest.mark.parametrize("name", ["lavit_tiny_patch16_224", "nalaformer_t"])
def test_pretrained_says_nothing_is_downloaded(name):
    with pytest.raises(ValueError, match="load_checkpoint"):
        timm.create_model(name, pretrained=True)


def test_backward_reaches_every_parameter():
    model = timm.create_model("soft_tiny", num_classes=4)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("kind", ATTN_KINDS)
def test_lavit_blocks_are_built_with_the_kinds_layer_class(kind):
    """timm builds each block's attention from `attn_layer` (nothing is swapped in afterwards), with the model's
    settings: RoPE, the class token, the patch grid, and TransNormer's local blocks first."""
    model = timm.create_model("lavit_tiny_patch16_224", attn_kind=kind, rope=True, img_size=64, depth=4)
    expected = ["local", "local", "norm", "norm"] if kind == "norm" else [kind] * 4
    for block, name in zip(model.blocks, expected, strict=True):
        assert isinstance(block.attn, vision.ATTN_LAYERS[name]) and block.attn.kind == name
        assert block.attn.use_rope and block.attn.num_prefix_tokens == 1 and block.attn.default_hw == (4, 4)


def test_lightning_decay_slows_with_depth():
    model = timm.create_model("lavit_tiny_patch16_224", attn_kind="lightning", img_size=64, depth=3)
    alibi = torch.tensor(kernels.alibi_slopes(3))
    for i, block in enumerate(model.blocks):
        assert torch.allclose(block.attn.slopes, alibi * (1 - i / 2 + 1e-5))
