"""RenderOptions: one description of a render, built by the CLI and by render_to_folder; a photo decoded once."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch
from PIL import Image

import nvs
from nvs import render
from nvs.model.field import FieldDecoder
from nvs.options import RenderOptions
from nvs.weights import TINY


def test_the_parser_defaults_are_the_dataclass_defaults():
    parser, defaults = render.build_parser(), RenderOptions()
    for f in fields(RenderOptions):
        assert parser.get_default(f.name) == getattr(defaults, f.name), f.name


def test_the_cli_builds_checked_options(tmp_path):
    args, options = render.parse_args([str(tmp_path / "a.jpg"), "--views", "3", "--background", "black"])
    assert isinstance(options, RenderOptions)
    assert options.views == 3 and options.background == (0.0, 0.0, 0.0)
    assert args.images == [tmp_path / "a.jpg"]


def test_checked_names_the_bad_option():
    with pytest.raises(ValueError, match="--size must be at least 8, got 4"):
        RenderOptions(size=4).checked()
    with pytest.raises(ValueError, match="--background: not a colour"):
        RenderOptions(background="no-such-colour").checked()
    with pytest.raises(ValueError, match="--mesh: expected one of"):
        RenderOptions(mesh="stl").checked()


def test_render_to_folder_takes_options_and_decodes_the_photo_once(tmp_path, monkeypatch):
    photo = tmp_path / "p.png"
    Image.fromarray((np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)).save(photo)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    torch.manual_seed(0)
    model = nvs.NViST(nvs.NViSTConfig(**TINY)).eval()
    options = RenderOptions(size=16, views=2, mesh="none", video="none")
    summary = nvs.render_to_folder(photo, tmp_path / "out", model=model, options=options, seed=1)
    assert [str(p) for p in opened] == [str(photo)]
    assert summary["seed"] == 1 and len(summary["cameras"]["views"]) == 2
    assert (tmp_path / "out" / "views" / "001.png").is_file()
    with pytest.raises(ValueError, match="unknown options"):
        nvs.render_to_folder(photo, tmp_path / "o2", model=model, sizes=3)


def test_decoder_forward_is_its_public_heads():
    torch.manual_seed(0)
    decoder = FieldDecoder(channels=12, density_channels=4, hidden=16, density_activation="softplus")
    vm, dirs = torch.randn(5, 7, 3, 12), torch.nn.functional.normalize(torch.randn(5, 7, 3), dim=-1)
    density, rgb = decoder(vm, dirs)
    assert torch.equal(density, decoder.activate(decoder.raw_density(vm)))
    assert torch.equal(rgb, decoder.rgb(decoder.colour_features(vm), decoder.direction_term(dirs)))
    # the heads the bake interpolates are linear in the VM features
    a, b = torch.randn(3, 3, 12), torch.randn(3, 3, 12)
    torch.testing.assert_close(decoder.raw_density(a + b), decoder.raw_density(a) + decoder.raw_density(b))
    torch.testing.assert_close(
        decoder.colour_features(a + b) - decoder.colour_features(b),
        decoder.colour_features(a) - decoder.colour_features(torch.zeros_like(a)),
    )
