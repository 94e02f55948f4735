"""Long work shows a tqdm bar on stderr when stderr is a terminal, and none when it is not or with --quiet:
rendering photos, embedding a re-id gallery, generating scenes and re-id data sets, rendering camera styles."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from PIL import Image


def as_terminal(monkeypatch) -> None:
    """Make the captured stderr say it is a terminal, as an interactive shell's is. Called from the test's body:
    capsys swaps sys.stderr only once the test itself starts."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)


def bar_lines(err: str, label: str) -> list[str]:
    return [part for part in err.replace("\r", "\n").splitlines() if label in part and "%|" in part]


def test_nvs_scene_generation(tmp_path, capsys, monkeypatch):
    from nvs.data import synthetic

    as_terminal(monkeypatch)
    args = ["--scenes", "2", "--views", "2", "--size", "8"]
    assert synthetic.main(["--out", str(tmp_path / "a"), *args]) == 0
    assert bar_lines(capsys.readouterr().err, "rendering scenes")[-1].startswith("rendering scenes: 100%|")
    assert synthetic.main(["--out", str(tmp_path / "b"), *args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_nvs_scene_generation_off_a_terminal(tmp_path, capsys):
    from nvs.data import synthetic

    assert synthetic.main(["--out", str(tmp_path), "--scenes", "1", "--views", "2", "--size", "8"]) == 0
    assert capsys.readouterr().err == ""


def test_reid_dataset_generation(tmp_path, capsys, monkeypatch):
    from reid.data import synthetic

    as_terminal(monkeypatch)
    args = ["--identities", "2", "--cameras", "2", "--images-per-camera", "1", "--domains", "source"]
    assert synthetic.main(["--out", str(tmp_path / "a"), *args]) == 0
    assert bar_lines(capsys.readouterr().err, "rendering identities")[-1].startswith("rendering identities: 100%|")
    assert synthetic.main(["--out", str(tmp_path / "b"), *args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_camera_style_rendering(tmp_path, capsys):
    from reid.gan import write_style_augmented

    photo = tmp_path / "0001_c1s1_000001_00.jpg"
    Image.new("RGB", (16, 32), (120, 40, 200)).save(photo)
    generators = {(0, 1): torch.nn.Tanh()}
    written = write_style_augmented(generators, [(str(photo), 1, 0)], tmp_path / "a", 32, 16, progress=True)
    assert len(written) == 1 and Path(written[0][0]).is_file()
    assert bar_lines(capsys.readouterr().err, "camera styles")[-1].startswith("camera styles: 100%|")
    write_style_augmented(generators, [(str(photo), 1, 0)], tmp_path / "b", 32, 16)  # off by default
    assert capsys.readouterr().err == ""


def test_photo_rendering_and_gallery_search(tmp_path, capsys, monkeypatch):
    from nvs import render
    from reid import search

    as_terminal(monkeypatch)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (24, 24), (200, 80, 30)).save(photo)
    fast = ["--size", "16", "--views", "2", "--mesh", "none", "--video", "none"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert render.main([str(photo), str(photo), "--out", str(tmp_path / "r"), *fast]) == 0
    assert bar_lines(capsys.readouterr().err, "rendering photo")[-1].count("2/2") == 1
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 32), (40 * i, 90, 160)).save(gallery / f"000{i}_c1_x.jpg")
    out = tmp_path / "grid.png"
    assert search.main(["--query", str(photo), "--gallery", str(gallery), "--out", str(out)]) == 0
    assert bar_lines(capsys.readouterr().err, "embedding")[-1].startswith("embedding: 100%|")
    assert search.main(["--query", str(photo), "--gallery", str(gallery), "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_scene_generation_before_training(tmp_path, capsys, monkeypatch):
    from nvs.data.datamodule import NViSTData

    spec = {"scenes": 2, "views": 2, "size": 8, "seed": 0}
    NViSTData(root=str(tmp_path / "quiet"), generate=spec).prepare_data()
    assert capsys.readouterr().err == ""  # not a terminal: no bar
    as_terminal(monkeypatch)
    NViSTData(root=str(tmp_path / "shown"), generate=spec).prepare_data()
    assert bar_lines(capsys.readouterr().err, "rendering scenes")[-1].startswith("rendering scenes: 100%|")
