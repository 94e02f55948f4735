"""Re-id ResNet trunks: timm registration, last stride 1 (output stride 16), channels, local checkpoints only."""

import pytest
import timm
import torch
from safetensors.torch import save_file

import vision

CHANNELS = {"resnet50_reid": 2048, "resnet18_reid": 512, "resnet_reid_tiny": 256}


def test_registered():
    assert set(CHANNELS) <= set(vision.list_models())


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_output_stride_16_and_channels(name):
    model = timm.create_model(name).eval()
    assert model.num_features == CHANNELS[name]
    assert model.feature_info[-1]["reduction"] == 16
    with torch.no_grad():
        fmap = model.forward_features(torch.randn(1, 3, 64, 32))
    assert fmap.shape == (1, CHANNELS[name], 4, 2)
    assert all(m.stride == (1, 1) for m in model.layer4.modules() if isinstance(m, torch.nn.Conv2d))


def test_full_size_map_and_no_head():
    model = timm.create_model("resnet_reid_tiny").eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 256, 128)).shape == (1, 256, 16, 8)
        assert model(torch.randn(1, 3, 256, 128)).shape == (1, 256)  # num_classes=0: pooled features


def test_names_and_shapes_are_timm_resnet50():
    """So ImageNet checkpoints (timm's or torchvision's) load; only the classifier differs."""
    ours = timm.create_model("resnet50_reid")
    theirs = timm.create_model("resnet50", num_classes=0)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_pretrained_needs_a_local_file():
    with pytest.raises(ValueError, match="pretrained_cfg_overlay"):
        timm.create_model("resnet_reid_tiny", pretrained=True)


def test_pretrained_from_a_local_imagenet_shaped_file(tmp_path):
    source = timm.create_model("resnet_reid_tiny", num_classes=1000)  # an ImageNet checkpoint has an fc
    path = tmp_path / "tiny.safetensors"
    save_file(source.state_dict(), str(path))
    model = timm.create_model("resnet_reid_tiny", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert not any(k.startswith("fc.") for k in model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_vision_load_checkpoint(tmp_path):
    source = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18.safetensors"
    save_file(source.state_dict(), str(path))
    model = timm.create_model("resnet18_reid")
    report = vision.load_checkpoint(model, path, verbose=False)
    assert not report.missing and set(report.skipped) == {"fc.weight", "fc.bias"}
    assert torch.equal(model.layer4[0].conv1.weight, source.layer4[0].conv1.weight)
