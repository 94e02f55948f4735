"""Re-id model files that must be refused with one short line naming the file: weights holding NaN or Inf (a
diverged run's), tensors missing or of the wrong shape, another kind of model's tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import reid
from reid.engine.checkpoints import read_network
from reid.models.core_reid import CoreReIDNet
from reid.models.inference import read_model_files, save_model
from reid.search import main as search

H, W = 64, 32


def one_line(error: BaseException | str) -> str:
    message = str(error)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.fixture
def saved(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_model(CoreReIDNet("resnet_reid_tiny", input_size=(H, W)), tmp_path / "m.safetensors")


def rewrite(path: Path, change) -> Path:
    save_file(change(load_file(str(path))), str(path))
    return path


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_holding_nan_or_inf_are_refused_naming_the_tensor(saved, bad):
    def poison(state):
        state["trunk.conv1.weight"][0, 0, 0, 0] = bad
        return state

    rewrite(saved, poison)
    for load in (reid.load_model, read_model_files):
        with pytest.raises(ValueError, match="trunk.conv1.weight") as caught:
            load(saved)
        message = one_line(caught.value)
        assert str(saved) in message and ("NaN" if bad != bad else "Inf") in message


def test_search_with_a_nan_model_exits_2_without_a_ranking(saved, tmp_path, capsys):
    def poison(state):
        return {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in state.items()}

    rewrite(saved, poison)
    folder = tmp_path / "gallery"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (W, H), (40 * i, 90, 200)).save(folder / f"{i:04d}_c1s1_000001_00.jpg")
    out = tmp_path / "grid.png"
    code = search(["--query", str(folder / "0000_c1s1_000001_00.jpg"), "--gallery", str(folder),
                   "--checkpoint", str(saved), "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and "nan" not in captured.out.lower() and not out.exists()
    assert "holds NaN" in one_line(captured.err.strip())


@pytest.mark.parametrize("kind", ["missing", "shape", "other"])
def test_tensors_that_do_not_fit_give_one_short_line(saved, kind):
    def change(state):
        if kind == "missing":
            del state["trunk.conv1.weight"]
        elif kind == "shape":
            state["trunk.conv1.weight"] = state["trunk.conv1.weight"][:1].clone()
        else:
            state = {f"decoder.blocks.{i}.attn.qkv.weight": torch.zeros(3, 3) for i in range(200)}
        return state

    rewrite(saved, change)
    expected = {"missing": "1 tensor missing", "shape": "wrong shape", "other": "not a re-id model"}[kind]
    with pytest.raises(ValueError) as caught:
        reid.load_model(saved)
    message = one_line(caught.value)
    assert str(saved) in message and expected in message


def test_a_lightning_checkpoint_holding_nan_is_refused_before_stage_2_starts_from_it(tmp_path):
    """read_network reads stage 1's checkpoint for stage 2 and for export: a diverged one names its tensor."""
    net = CoreReIDNet("resnet_reid_tiny", input_size=(H, W))
    state = {f"net.{k}": v.clone() for k, v in net.state_dict().items()}
    state["net.trunk.conv1.weight"][0, 0, 0, 0] = float("nan")
    hyper = {"trunk": "resnet_reid_tiny", "trunk_kwargs": None, "input_size": (H, W)}
    torch.save({"hyper_parameters": hyper, "state_dict": state}, tmp_path / "stage1.ckpt")
    with pytest.raises(ValueError, match="trunk.conv1.weight") as caught:
        read_network(str(tmp_path / "stage1.ckpt"))
    assert str(tmp_path / "stage1.ckpt") in one_line(caught.value) and "NaN" in str(caught.value)
    state["net.trunk.conv1.weight"][0, 0, 0, 0] = 0.0
    torch.save({"hyper_parameters": hyper, "state_dict": state}, tmp_path / "stage1.ckpt")
    weights, config = read_network(str(tmp_path / "stage1.ckpt"))
    assert config["trunk"] == "resnet_reid_tiny" and torch.equal(
        weights["trunk.conv1.weight"], state["net.trunk.conv1.weight"]
    )
