"""Whole models pickle as timm's do: pickle.dumps/loads, torch.save/torch.load(weights_only=False), copy.deepcopy
and a fresh interpreter (what spawn-based multiprocessing does) give back a model with the same outputs.

LaViT's attention classes are made by `bind` at run time (timm's `attn_layer=` takes a class), so their instances
carry the recipe of their class instead of its name."""

import copy
import io
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import vision
from vision.layers.attention import SoftmaxAttention, bind

ROOT = Path(__file__).resolve().parents[2]
TINY_VIT = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)


def lavit(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("lavit_tiny_patch16_224", attn_kind=kind, rope=kind != "soft", **TINY_VIT).eval()


def round_trips(model: torch.nn.Module) -> list[torch.nn.Module]:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return [pickle.loads(pickle.dumps(model)), torch.load(buffer, weights_only=False), copy.deepcopy(model)]


def attn_settings(model: torch.nn.Module) -> list[tuple]:
    return [
        (type(b.attn).__name__, b.attn.kind, b.attn.use_rope, b.attn.num_prefix_tokens, b.attn.default_hw)
        for b in model.blocks
    ]


@pytest.mark.parametrize("kind", ["softmax", "norm", "soft"])  # norm: a local block then a norm block
@torch.no_grad()
def test_lavit_round_trip(kind):
    model = lavit(kind)
    x = torch.randn(2, 3, 32, 32)
    for loaded in round_trips(model):
        assert attn_settings(loaded) == attn_settings(model)
        assert torch.equal(loaded.eval()(x), model(x))
        assert all(
            isinstance(b.attn, vision.ATTN_LAYERS[b.attn.kind]) and type(b.attn) is not vision.ATTN_LAYERS[b.attn.kind]
            for b in loaded.blocks
        )  # still the bound class (timm's attn_layer), not the bare kind
        pickle.dumps(loaded)  # and it pickles again


@torch.no_grad()
def test_hilavit_round_trip():
    torch.manual_seed(0)
    model = timm.create_model("mala_t", num_classes=5).eval()
    x = torch.randn(2, 3, 64, 64)
    for loaded in round_trips(model):
        assert torch.equal(loaded.eval()(x), model(x))


def test_bound_layer_pickles_with_its_settings():
    layer = bind(bind(SoftmaxAttention, rope=True, grid_size=(2, 2)), num_prefix_tokens=1)(16, 2)
    loaded = pickle.loads(pickle.dumps(layer))
    assert isinstance(loaded, SoftmaxAttention)
    assert (loaded.use_rope, loaded.default_hw, loaded.num_prefix_tokens) == (True, (2, 2), 1)
    assert type(loaded).__bound__ == (SoftmaxAttention, dict(rope=True, grid_size=(2, 2), num_prefix_tokens=1))
    x = torch.randn(1, 5, 16)
    assert torch.equal(loaded(x), layer(x))
    # a new instance of the rebuilt class gets the same settings from its constructor
    assert type(loaded)(16, 2).default_hw == (2, 2)


def test_lavit_loads_in_a_fresh_interpreter(tmp_path):
    """A process that never built the model (spawn) unpickles it: the bound classes are rebuilt there."""
    model = lavit("mala")
    x = torch.randn(1, 3, 32, 32)
    torch.save({"model": model, "x": x, "y": model(x).detach()}, tmp_path / "model.pt")
    script = (
        "import sys, torch\n"
        "saved = torch.load(sys.argv[1], weights_only=False)\n"
        "with torch.no_grad():\n"
        "    assert torch.equal(saved['model'].eval()(saved['x']), saved['y'])\n"
        "print(type(saved['model'].blocks[0].attn).__bound__[0].__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model.pt")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "MALAAttention"
