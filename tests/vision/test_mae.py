"""MAE: patch bookkeeping, masking, the loss, and positions under masking for every attention kind."""

import pytest
import timm
import torch

import vision
from vision.models.mae import MaskedAutoencoder
from vision.training import save_encoder

TINY = dict(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=2)


def mae(kind="softmax", rope=True, local_fraction=0.5, **kw):
    torch.manual_seed(0)
    return MaskedAutoencoder(
        "lavit_tiny_patch16_224",
        dict(TINY, attn_kind=kind, rope=rope, local_fraction=local_fraction),
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=2,
        **kw,
    )


def test_patchify_layout_and_roundtrip():
    model = mae()
    images = torch.rand(2, 3, 32, 32)
    patches = model.patchify(images)
    assert patches.shape == (2, 64, 48)
    # patch (row 1, col 2) holds pixels [4:8, 8:12], channel last
    assert torch.equal(patches[0, 1 * 8 + 2].reshape(4, 4, 3), images[0, :, 4:8, 8:12].permute(1, 2, 0))
    assert torch.equal(model.unpatchify(patches), images)


def test_masking_keeps_a_quarter_and_restores_order():
    model = mae()
    keep, mask, restore = model.random_masking(3, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert keep.shape == (3, 16) and mask.sum(1).tolist() == [48.0] * 3
    for b in range(3):
        assert set(keep[b].tolist()) == set((mask[b] == 0).nonzero().flatten().tolist())
        # restore maps each patch to its slot in [kept tokens, mask tokens]: kept patch i sits at slot i
        assert restore[b, keep[b]].tolist() == list(range(16))
        assert sorted(restore[b].tolist()) == list(range(64))


def test_loss_counts_only_masked_patches_and_normalises_pixels():
    model = mae()
    images = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 64)
    mask[0, :10] = 1
    target = model.patchify(images)
    normed = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    pred = normed.clone()
    pred[0, 10:] += 5.0  # wrong only where nothing was masked
    assert model.loss(images, pred, mask).item() < 1e-10
    pred[0, :10] += 1.0
    assert model.loss(images, pred, mask).item() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("kind", ["softmax", "sigmoid", "nala", "mala", "soft", "norm"])
def test_encoder_under_masking_knows_where_tokens_are(kind):
    """Keeping every patch in a shuffled order must give the unmasked encoder's class token: positions come from
    the layout (pos_embed gather, LePE, landmarks, RoPE), not from the order of the tokens."""
    # norm: no local blocks (block order matters to them), so only the norm layers' plumbing is checked
    model = mae(kind, rope=kind != "soft", **({"local_fraction": 0.0} if kind == "norm" else {})).double().eval()
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    shuffled = torch.stack([torch.randperm(64), torch.randperm(64)])
    masked_cls = model.forward_encoder(images, shuffled)[:, 0]
    full_cls = model.encoder.forward_features(images)[:, 0]
    assert torch.allclose(masked_cls, full_cls, atol=1e-9)


def test_forward_rejects_wrong_image_shape():
    with pytest.raises(ValueError, match="images"):
        mae()(torch.rand(2, 3, 48, 48))


def test_exported_encoder_loads_into_a_classifier(tmp_path):
    model = mae("nala")
    save_encoder(model, tmp_path / "enc.safetensors")
    classifier = timm.create_model("lavit_tiny_patch16_224", **TINY, attn_kind="nala", rope=True, num_classes=5)
    report = vision.load_checkpoint(classifier, tmp_path / "enc.safetensors")
    assert set(report.missing) == {"head.weight", "head.bias"} and not report.skipped
    assert torch.equal(classifier.blocks[1].attn.gate.weight, model.encoder.blocks[1].attn.gate.weight)
