"""Model files and checkpoints that must be refused with one short line naming the file: weights holding NaN or
Inf, a config of the wrong types, tensors that do not fit, another package's Lightning checkpoint; and a model
whose finite but huge weights render NaN, which must leave nothing behind (no folder, no summary.json)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nvs
from nvs import ood, outputs, render, weights
from nvs.weights import TINY, save_model


def one_line(error: BaseException | str) -> str:
    message = str(error)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.fixture(scope="module")
def tiny() -> nvs.NViST:
    torch.manual_seed(0)
    return nvs.NViST(nvs.NViSTConfig(**TINY)).eval()


@pytest.fixture
def saved(tiny, tmp_path) -> Path:
    return save_model(tiny, tmp_path / "m.safetensors")


def rewrite(path: Path, change) -> Path:
    """The model file at `path` with its tensors passed through `change(dict) -> dict`."""
    from safetensors.torch import load_file, save_file

    save_file(change(load_file(str(path))), str(path))
    return path


def huge(model: nvs.NViST, seed: int = 0) -> nvs.NViST:
    """`model` with every weight moved by noise of 1e6: finite, as a diverged run leaves them, but renders NaN."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1e6 * torch.randn(parameter.shape, generator=generator))
    return model


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_weights_holding_nan_or_inf_are_refused_naming_the_tensor(saved, bad):
    def poison(state):
        state["plane_head.weight"][0, 0] = bad
        return state

    rewrite(saved, poison)
    with pytest.raises(ValueError, match="plane_head.weight") as caught:
        nvs.load_model(saved)
    message = one_line(caught.value)
    assert str(saved) in message and ("NaN" if bad != bad else "Inf") in message


def test_a_missing_tensor_a_wrong_shape_and_another_model_give_one_short_line(saved):
    def drop(state):
        del state["line_head.bias"]
        return state

    def reshape(state):
        state["line_head.bias"] = state["line_head.bias"][:1].clone()
        return state

    def other(state):
        return {f"trunk.layer{i}.conv.weight": torch.zeros(4, 4) for i in range(40)}

    for change, expected in [(drop, "1 tensor missing"), (reshape, "wrong shape"), (other, "not an NViST model")]:
        path = save_model(nvs.NViST(nvs.NViSTConfig(**TINY)), saved.with_name(f"{change.__name__}.safetensors"))
        rewrite(path, change)
        with pytest.raises(ValueError) as caught:
            nvs.load_model(path)
        message = one_line(caught.value)
        assert str(path) in message and expected in message


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("image_height", "abc", "an integer"),
        ("samples", True, "an integer"),
        ("samples", 24.0, "an integer"),
        ("density_scale", "5", "a number"),
        ("density_scale", float("nan"), "finite"),
        ("density_activation", 3, "a string"),
        ("training_data", 7, "a string or null"),
        ("extras", [], "a mapping"),
        ("patch_size", 0, "at least 1"),
    ],
)
def test_config_fields_of_the_wrong_type_name_the_field(field, value, words):
    with pytest.raises(ValueError, match=field) as caught:
        nvs.NViSTConfig(**{**TINY, field: value})
    assert words in one_line(caught.value)


def test_config_accepts_whole_numbers_for_floats_and_null_training_data():
    config = nvs.NViSTConfig(**{**TINY, "density_scale": 5, "training_data": None})
    assert config.density_scale == 5 and config.training_data is None


def test_load_model_names_the_json_of_a_bad_config(saved):
    config = saved.with_suffix(".json")
    config.write_text(json.dumps({**json.loads(config.read_text()), "image_height": "abc"}))
    with pytest.raises(ValueError, match="image_height") as caught:
        nvs.load_model(saved)
    assert str(config) in one_line(caught.value)


# ---- a model whose finite but huge weights render NaN ----------------------------------------------------------


def strict(text: str):
    """JSON that must not hold NaN or Infinity (json.loads alone accepts them)."""

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_huge_weights_fail_the_photo_and_leave_no_folder(tmp_path, capsys):
    path = save_model(huge(nvs.NViST(nvs.NViSTConfig(**TINY)).eval()), tmp_path / "diverged.safetensors")
    model = nvs.load_model(path)  # finite weights load; rendering them must fail
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(photo)
    with pytest.raises(ValueError, match="NaN or Inf") as caught:
        nvs.render_to_folder(photo, tmp_path / "out", model=model, views=2, size=16, mesh="none", video="none")
    one_line(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diverged.json", "diverged.safetensors", "photo.png"]

    out = tmp_path / "cli"
    code = render.main([str(photo), "--checkpoint", str(path), "--out", str(out), "--views", "2", "--size", "16",
                        "--mesh", "none", "--video", "none", "--quiet"])  # fmt: skip
    assert code == 2 and (not out.exists() or list(out.iterdir()) == [])
    assert f"{photo}: the model rendered NaN or Inf" in capsys.readouterr().err  # the command names the photo


def test_nan_in_the_orbit_views_is_caught_too(tiny, tmp_path, monkeypatch):
    """The input view may come out finite while the orbit's views do not: those are checked before writing."""
    monkeypatch.setattr(ood, "input_view_scores", lambda field, image: {"psnr": 30.0, "gain": 1.0, "contrast": 0.2})
    real = outputs.BakedField.render

    def nan_render(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        return {**out, "depth": out["depth"].clone().fill_(float("nan"))}

    monkeypatch.setattr(outputs.BakedField, "render", nan_render)
    with pytest.raises(ValueError, match="NaN or Inf colour or depth") as caught:
        nvs.render_to_folder(torch.rand(3, 32, 32), tmp_path / "out", model=tiny, views=2, size=16, mesh="none",
                             video="none")  # fmt: skip
    one_line(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_summary_json_is_strict_json_when_a_score_is_not_finite(tiny, tmp_path, monkeypatch):
    scores = {"psnr": float("inf"), "gain": float("nan"), "contrast": 0.2}
    monkeypatch.setattr(ood, "input_view_scores", lambda field, image: dict(scores))
    summary = nvs.render_to_folder(torch.rand(3, 32, 32), tmp_path / "out", model=tiny, views=2, size=16,
                                   mesh="none", video="none")  # fmt: skip
    written = strict((tmp_path / "out/summary.json").read_text())
    assert written["input_view"] == summary["input_view"] == {"psnr": None, "gain": None, "contrast": 0.2}
    strict((tmp_path / "out/nerfstudio/transforms.json").read_text())


def test_scores_are_never_nan_and_notice_takes_a_perfect_view():
    class Exact:
        focal = 20.0

        def render(self, poses, **camera):
            return {"rgb": image.permute(1, 2, 0)[None]}

    image = torch.zeros(3, 4, 6)
    image[:, :, :3] = 1.0
    scores = ood.input_view_scores(Exact(), image)  # an exact reproduction: infinite PSNR
    assert scores["psnr"] is None and json.dumps(scores, allow_nan=False)
    assert ood.notice(scores, None) is None


def test_a_field_rendering_nan_fails_the_input_view_score():
    class Broken:
        focal = 20.0

        def render(self, poses, *, height, width, **camera):
            return {"rgb": torch.full((1, height, width, 3), float("nan"))}

    with pytest.raises(ValueError, match="NaN or Inf"):
        ood.input_view_scores(Broken(), torch.rand(3, 4, 6))


# ---- python -m nvs.weights on checkpoints it cannot convert ----------------------------------------------------


def lightning(path: Path, state: dict, hyper: dict) -> Path:
    torch.save({"epoch": 0, "global_step": 4, "state_dict": state, "hyper_parameters": hyper}, path)
    return path


VISION = {
    "_class_path": "vision.ImageClassifier",
    "model": "nalaformer_t",
    "num_classes": 4,
    "model_kwargs": {"depths": [1, 1]},
}
REID = {"_class_path": "reid.engine.SourcePretrainer", "trunk": "resnet_reid_tiny", "input_size": (64, 32)}


@pytest.mark.parametrize(
    "hyper, package",
    [
        (VISION, "vision"),
        ({k: v for k, v in VISION.items() if k != "_class_path"}, "vision"),
        (REID, "reid"),
        ({k: v for k, v in REID.items() if k != "_class_path"}, "reid"),
    ],
)
def test_nvs_weights_refuses_another_packages_checkpoint(tmp_path, capsys, hyper, package):
    state = {f"net.stem.layers.{i}.weight": torch.zeros(8, 3) for i in range(30)}
    checkpoint = lightning(tmp_path / "other.ckpt", state, hyper)
    out = tmp_path / "m.safetensors"
    assert weights.main([str(checkpoint), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err.strip())
    assert str(checkpoint) in line and "not an NViST checkpoint" in line and package in line
    assert captured.out == "" and list(tmp_path.iterdir()) == [checkpoint]


def test_nvs_weights_refuses_wrong_tensors_and_nan_in_one_line(tiny, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    hyper = {"model": dict(TINY)}
    wrong = lightning(tmp_path / "wrong.ckpt", {f"net.x{i}.weight": torch.zeros(2) for i in range(300)}, hyper)
    nan = {f"net.{k}": v.clone() for k, v in tiny.state_dict().items()}
    nan["net.plane_head.bias"][3] = float("nan")
    diverged = lightning(tmp_path / "nan.ckpt", nan, hyper)
    for checkpoint, expected in [(wrong, "not an NViST model"), (diverged, "'plane_head.bias' holds NaN")]:
        assert weights.main([str(checkpoint), "--out", str(out)]) == 2
        line = one_line(capsys.readouterr().err.strip())
        assert str(checkpoint) in line and expected in line
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_nvs_weights_still_converts_an_nvs_checkpoint(tiny, tmp_path):
    state = {f"net.{k}": v for k, v in tiny.state_dict().items()}
    checkpoint = lightning(tmp_path / "nvs.ckpt", state, {"model": dict(TINY), "lr": 1e-3})
    assert weights.main([str(checkpoint), "--out", str(tmp_path / "m.safetensors")]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = nvs.load_model(tmp_path / "m.safetensors")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in tiny.state_dict().items())
