"""CoreReIDNet (ECAB in the trained path, BNNeck, ensemble fusion, BMFN), ReIDModel.embed and save/load."""

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from reid.losses import stage1_loss, stage2_loss
from reid.models import inference
from reid.models.core_reid import ECAB, CoreReIDNet, ensemble_fusion
from reid.models.inference import ReIDModel, load_model, save_model

H, W, C = 64, 32, 256


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = CoreReIDNet("resnet_reid_tiny", num_classes=5, input_size=(H, W))
    with torch.no_grad():  # non-trivial BN running statistics
        for _ in range(3):
            model(torch.randn(8, 3, H, W))
    return model.eval()


def images(n=4, seed=0, h=H, w=W):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_ecab_widths_and_range():
    assert ECAB(2048).widths == (2048, 512, 128, 32, 128, 512, 2048)  # the paper's
    assert ECAB(256).widths == (256, 64, 16, 8, 16, 64, 256)  # scaled, floored at 8
    weights = ECAB(16)(torch.rand(3, 16, 2, 4))
    assert weights.shape == (3, 16) and (weights > 0).all() and (weights < 1).all()


def test_parts_shapes(net):
    out = net.forward_parts(images())
    expected = {"global", "global_bn", "upper", "lower", "att_upper", "att_lower", "upper_pool", "lower_pool"}
    assert set(out) == expected | {"logits"}
    assert all(out[k].shape == (4, C) for k in expected) and out["logits"].shape == (4, 5)
    assert net(images()).shape == (4, 3 * C) and net.feature_dim == 3 * C
    assert "logits" not in CoreReIDNet("resnet_reid_tiny", input_size=(H, W)).eval().forward_parts(images())


def test_half_branch_is_ecab_weighted_pooling(net):
    """upper = BN(Linear(cat[GAP, GMP](half map x ECAB(half map)))) on the top half of the trunk's map."""
    x = images()
    with torch.no_grad():
        out = net.forward_parts(x)
        top = net.trunk.forward_features(x)[:, :, :2]
        att = net.ecab_upper(top)
        weighted = top * att[:, :, None, None]
        pooled = torch.cat([weighted.mean((2, 3)), weighted.amax((2, 3))], 1)
        torch.testing.assert_close(out["upper"], net.bn_upper(net.fc_upper(pooled)))
        torch.testing.assert_close(out["att_upper"], att)


def test_every_student_parameter_learns_from_the_stage2_loss():
    """The released code's ECAB and fusion got no gradient; here every learnable parameter does."""
    torch.manual_seed(1)
    student = CoreReIDNet("resnet_reid_tiny", num_classes=4, input_size=(H, W)).train()
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    losses = stage2_loss(student(images(8)), y, labels_upper=y.roll(1), labels_lower=y.roll(3))
    losses["loss"].backward()
    silent = [n for n, p in student.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert silent == []
    assert all(p.grad.abs().sum() > 0 for p in student.ecab_upper.parameters())
    assert all(p.grad.abs().sum() > 0 for p in student.ecab_lower.parameters())
    frozen = {n for n, p in student.named_parameters() if not p.requires_grad}
    assert frozen == {"bn_global.bias", "bn_upper.bias", "bn_lower.bias"}  # BNNeck


def test_stage1_loss_runs():
    torch.manual_seed(2)
    model = CoreReIDNet("resnet_reid_tiny", num_classes=3, input_size=(H, W)).train()
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = stage1_loss(model(images(6)), y)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and model.classifier.weight.grad.any() and model.trunk.conv1.weight.grad.any()


def test_ensemble_fusion_uses_the_students_attention(net):
    x = images()
    teacher = net
    student = CoreReIDNet("resnet_reid_tiny", num_classes=5, input_size=(H, W)).eval()
    with torch.no_grad():
        t, s = teacher.forward_parts(x), student.forward_parts(x)
        g, up, low = ensemble_fusion(t, s)
        torch.testing.assert_close(up, F.normalize(t["upper_pool"] * s["att_upper"]))
        torch.testing.assert_close(low, F.normalize(t["lower_pool"] * s["att_lower"]))
        torch.testing.assert_close(g, F.normalize(t["global_bn"]))
        for f in (g, up, low):
            torch.testing.assert_close(f.norm(dim=1), torch.ones(4))
        student.ecab_upper.mlp[-1].weight.mul_(-1)  # another attention changes only the upper fused feature
        g2, up2, low2 = ensemble_fusion(t, student.forward_parts(x))
    assert torch.equal(g, g2) and torch.equal(low, low2) and not torch.allclose(up, up2)


def test_reset_classifier(net):
    model = CoreReIDNet("resnet_reid_tiny", num_classes=5, input_size=(H, W))
    centroids = torch.randn(5, C)
    model.reset_classifier(centroids)
    torch.testing.assert_close(model.classifier.weight, F.normalize(centroids))
    model.reset_classifier(torch.randn(7, C))
    assert model.classifier.weight.shape == (7, C) and model.config["num_classes"] == 7
    with pytest.raises(ValueError, match="centroids"):
        model.reset_classifier(torch.randn(5, C + 1))


def test_embed_is_flip_averaged_and_normalised(net):
    x = images()
    with torch.no_grad():
        e = net.embed(x)
        manual = F.normalize(net(x) + net(x.flip(3)))
        torch.testing.assert_close(e, manual)
        torch.testing.assert_close(e, net.embed(x.flip(3)))
    assert e.shape == (4, 3 * C)


def test_small_inputs_are_refused():
    with pytest.raises(ValueError, match="input_size"):
        CoreReIDNet("resnet_reid_tiny", input_size=(16, 32))
    model = CoreReIDNet("resnet_reid_tiny", input_size=(H, W)).eval()
    with pytest.raises(ValueError, match="height"):
        model(torch.randn(1, 3, 16, 32))


def test_reid_model_embeds_tensors_pil_images_and_paths(net, tmp_path):
    model = ReIDModel(net).eval()
    pixels = torch.rand(2, 3, 90, 41, generator=torch.Generator().manual_seed(3))
    e = model.embed(pixels)  # any size: resized to 64 x 32
    assert e.shape == (2, 3 * C) and e.dtype == torch.float32
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(model.embed(pixels, batch_size=1), e)

    u8 = (pixels * 255).round().byte().permute(0, 2, 3, 1).numpy()
    pil = [Image.fromarray(a) for a in u8]
    pil[1].save(tmp_path / "b.png")
    from_files = model.embed([pil[0], tmp_path / "b.png"])
    torch.testing.assert_close(from_files, model.embed(torch.from_numpy(u8).permute(0, 3, 1, 2) / 255))
    assert model.embed(str(tmp_path / "b.png")).shape == (1, 3 * C)
    torch.testing.assert_close(model.embed([pil[0], tmp_path / "b.png"], batch_size=1), from_files)
    assert model.embed(pixels[0]).shape == (1, 3 * C)
    assert model.embed([]).shape == (0, 3 * C)


def test_reid_model_rejects_bad_images(net, tmp_path):
    model = ReIDModel(net)
    with pytest.raises(ValueError, match="0..1"):
        model.embed(torch.rand(1, 3, H, W) * 255)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        model.embed(torch.rand(1, 1, H, W))
    (tmp_path / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="x.jpg"):
        model.embed(tmp_path / "x.jpg")


def test_save_load_round_trip(net, tmp_path):
    path = save_model(ReIDModel(net), tmp_path / "m" / "reid.safetensors")
    assert sorted(p.name for p in path.parent.iterdir()) == ["reid.json", "reid.safetensors"]
    config = json.loads(path.with_suffix(".json").read_text())
    assert config == {"trunk": "resnet_reid_tiny", "num_classes": 5, "trunk_kwargs": {}, "input_size": [H, W]}
    loaded = load_model(path)
    assert isinstance(loaded, ReIDModel) and not loaded.training
    x = torch.rand(3, 3, H, W)
    torch.testing.assert_close(loaded.embed(x), ReIDModel(net).embed(x))


def test_build_only_trunk_arguments_are_not_saved(tmp_path):
    model = CoreReIDNet("resnet_reid_tiny", input_size=(H, W), trunk_kwargs={"drop_rate": 0.1})
    model.config["trunk_kwargs"]["pretrained_cfg_overlay"] = {"file": "/gone/resnet.pth"}
    path = save_model(model, tmp_path / "m.safetensors")
    assert json.loads(path.with_suffix(".json").read_text())["trunk_kwargs"] == {"drop_rate": 0.1}
    load_model(path)


def test_broken_checkpoints_name_the_file(net, tmp_path):
    path = save_model(net, tmp_path / "m.safetensors")
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="m.safetensors"):
        load_model(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="m.json"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_model(tmp_path / "nothing.safetensors")
    other = save_model(CoreReIDNet("resnet_reid_tiny", input_size=(H, W)), tmp_path / "o.safetensors")
    other.with_suffix(".json").write_text(json.dumps({"trunk": "resnet18_reid", "input_size": [H, W]}))
    with pytest.raises(ValueError, match="does not fit"):
        load_model(other)
    other.with_suffix(".json").write_text(json.dumps({"trunk": "resnet_reid_tiny", "colour": 1}))
    with pytest.raises(ValueError, match="colour"):
        load_model(other)


def test_default_model_without_weights_warns(monkeypatch, tmp_path):
    monkeypatch.setattr(inference, "DEFAULT_WEIGHTS", tmp_path / "absent.safetensors")
    with pytest.warns(UserWarning, match="randomly initialised"):
        model = load_model()
    assert model.embed(torch.rand(1, 3, 50, 20)).shape == (1, model.feature_dim)
