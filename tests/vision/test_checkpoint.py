"""vision.load_checkpoint: formats, prefixes, resampling, reports and broken files."""

import pytest
import timm
import torch
from safetensors.torch import save_file

import vision


@pytest.fixture(scope="module")
def vit_state():
    return timm.create_model("vit_tiny_patch16_224").state_dict()


@pytest.mark.parametrize("layout", ["plain", "model", "state_dict_net", "module", "safetensors"])
def test_formats_and_prefixes(layout, vit_state, tmp_path):
    path = tmp_path / ("ckpt.safetensors" if layout == "safetensors" else "ckpt.pth")
    if layout == "safetensors":
        save_file(vit_state, str(path))
    elif layout == "plain":
        torch.save(vit_state, path)
    elif layout == "model":  # MAE's release format
        torch.save({"model": vit_state, "epoch": 3}, path)
    elif layout == "state_dict_net":  # a Lightning checkpoint of our ImageClassifier
        torch.save({"state_dict": {f"net.{k}": v for k, v in vit_state.items()}, "epoch": 1}, path)
    else:
        torch.save({f"module.{k}": v for k, v in vit_state.items()}, path)
    model = timm.create_model("lavit_tiny_patch16_224")
    report = vision.load_checkpoint(model, path)
    assert len(report.copied) == len(vit_state) and not report.missing and not report.skipped
    assert torch.equal(model.pos_embed, vit_state["pos_embed"])


def test_shape_mismatch_is_skipped_and_reported(vit_state, tmp_path):
    torch.save(vit_state, tmp_path / "vit.pth")
    model = timm.create_model("lavit_tiny_patch16_224", num_classes=10)
    report = vision.load_checkpoint(model, tmp_path / "vit.pth")
    assert set(report.skipped) == {"head.weight", "head.bias"} and "(1000, 192)" in report.skipped["head.weight"]
    assert set(report.missing) == {"head.weight", "head.bias"}
    assert "skipped head.weight" in str(report)


def test_position_embedding_is_resampled(vit_state, tmp_path):
    torch.save(vit_state, tmp_path / "vit.pth")
    model = timm.create_model("lavit_tiny_patch16_224", img_size=112)
    report = vision.load_checkpoint(model, tmp_path / "vit.pth")
    assert "pos_embed" in report.copied
    assert torch.equal(model.pos_embed[:, 0], vit_state["pos_embed"][:, 0])  # class token's embedding kept


def test_mae_checkpoint_with_decoder_keys(vit_state, tmp_path):
    state = {f"encoder.{k}": v for k, v in vit_state.items() if not k.startswith("head")}
    state["decoder_embed.weight"] = torch.zeros(512, 192)
    state["mask_token"] = torch.zeros(1, 1, 512)
    torch.save({"model": state}, tmp_path / "mae.pth")
    report = vision.load_checkpoint(timm.create_model("lavit_tiny_patch16_224", attn_kind="nala"), tmp_path / "mae.pth")
    assert report.skipped == {"decoder_embed.weight": "not in the model", "mask_token": "not in the model"}


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04truncated zip"])
def test_broken_files_raise_a_clear_error(content, tmp_path):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="checkpoint: cannot read"):
        vision.load_checkpoint(timm.create_model("lavit_tiny_patch16_224"), path)


def test_missing_file_and_non_tensor_content(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        vision.load_checkpoint(timm.create_model("lavit_tiny_patch16_224"), tmp_path / "none.pth")
    torch.save({"epoch": 3, "note": "no weights"}, tmp_path / "meta.pth")
    with pytest.raises(ValueError, match="holds no tensors"):
        vision.load_checkpoint(timm.create_model("lavit_tiny_patch16_224"), tmp_path / "meta.pth")
