"""vision.load_checkpoint with the wrong file: another model's checkpoint is an error naming the file (not a
report of 0 tensors copied and a model left at random), and one that fills less than half of the model warns."""

import warnings
from pathlib import Path

import pytest
import timm
import torch

import vision
from vision import ImageClassifier

ROOT = Path(__file__).resolve().parents[2]
NVS_MODEL = ROOT / "nvs/assets/nvist_default.safetensors"  # the shipped novel-view model: nothing a classifier has
TINY = dict(embed_dims=[32, 64, 96, 128], depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 4], head_hidden_size=None)


def test_another_models_checkpoint_raises_one_line_naming_the_file():
    with pytest.raises(ValueError, match="another model") as raised:
        vision.load_checkpoint(timm.create_model("nalaformer_t", num_classes=4, **TINY), NVS_MODEL)
    message = str(raised.value)
    assert str(NVS_MODEL) in message and "\n" not in message


def test_a_lightning_checkpoint_of_another_model_raises(tmp_path):
    """Same names, other shapes (an nvs ViT's 96-wide tokens against a ViT-Tiny's 192): nothing fits."""
    other = timm.create_model("vit_tiny_patch16_224", embed_dim=96, num_heads=2, num_classes=5).state_dict()
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in other.items()}, "global_step": 4}, path)
    model = timm.create_model("lavit_tiny_patch16_224")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="none of the") as raised:
        vision.load_checkpoint(model, path)
    assert str(path) in str(raised.value) and "shape" in str(raised.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_classifier_refuses_another_models_checkpoint():
    with pytest.raises(ValueError, match="another model"):
        ImageClassifier(model="nalaformer_t", num_classes=4, model_kwargs=TINY, checkpoint=str(NVS_MODEL))


def test_a_checkpoint_filling_less_than_half_of_the_model_warns(tmp_path):
    state = timm.create_model("vit_tiny_patch16_224").state_dict()
    kept = {k: v for k, v in state.items() if not k.startswith("blocks.")}  # embeddings, final norm, head
    torch.save(kept, tmp_path / "partial.pth")
    model = timm.create_model("lavit_tiny_patch16_224")
    with pytest.warns(UserWarning, match="filled only") as caught:
        report = vision.load_checkpoint(model, tmp_path / "partial.pth")
    assert str(tmp_path / "partial.pth") in str(caught[0].message)
    assert len(report.copied) == len(kept) and report.copied and len(report.copied) < len(report.missing)
    assert torch.equal(model.pos_embed, state["pos_embed"])  # what matched is still loaded
    assert str(report).startswith(f"copied {len(kept)} tensors, skipped 0, left {len(report.missing)} model")


def test_a_full_checkpoint_loads_without_a_warning(tmp_path):
    torch.save(timm.create_model("vit_tiny_patch16_224", num_classes=10).state_dict(), tmp_path / "vit.pth")
    model = timm.create_model("lavit_tiny_patch16_224", num_classes=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = vision.load_checkpoint(model, tmp_path / "vit.pth")
    assert report.copied and not report.missing and not report.skipped
