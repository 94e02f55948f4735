"""python -m reid.search: the ranked grid, the order by distance, the shipped default model, and bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from reid import load_model
from reid import search as reid_search
from reid.data.synthetic import generate
from reid.search import main, rank

from ..help_imports import help_and_imports


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    generate(out, identities=8, cameras=2, images_per_camera=2, domains=("target",))
    return out / "target"


def test_default_model_ships_and_embeds():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing default model warns; the shipped one must not
        model = load_model()
    features = model.embed(torch.rand(3, 3, 90, 40))
    assert features.shape == (3, model.feature_dim)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(3))


def test_search_writes_ranked_grid(gallery, tmp_path, capsys):
    query = sorted((gallery / "query").iterdir())[0]
    out = tmp_path / "grid.png"
    assert (
        main(["--query", str(query), "--gallery", str(gallery / "bounding_box_test"), "--topk", "5", "--out", str(out)])
        == 0
    )
    with Image.open(out) as grid:
        assert grid.width > 5 * 64 and grid.height >= 128
    lines = [line for line in capsys.readouterr().out.splitlines() if line[:4].strip().isdigit()]
    distances = [float(line.split()[1]) for line in lines]
    assert len(distances) == 5 and distances == sorted(distances)
    # the same ranking as embedding everything and sorting by hand
    model = load_model()
    paths = sorted(p for p in (gallery / "bounding_box_test").iterdir())
    d = torch.cdist(model.embed([query]), model.embed(paths))[0]
    expected = [paths[i] for i in d.argsort()[:5].tolist()]
    assert [m.path for m in rank(model, query, paths, topk=5, rerank=False)] == expected
    features = model.embed(paths)  # a gallery embedded once, then searched: the same ranking
    assert [m.path for m in rank(model, query, paths, topk=5, rerank=False, gallery_features=features)] == expected
    with pytest.raises(ValueError, match="gallery_features"):
        rank(model, query, paths, topk=5, rerank=False, gallery_features=features[:-1])


@pytest.mark.parametrize(
    "case, message",
    [("missing-query", "no such file"), ("gallery-file", "not a directory"), ("empty-gallery", "no images")],
)
def test_search_errors_exit_2(gallery, tmp_path, capsys, case, message):
    query = sorted((gallery / "query").iterdir())[0]
    args = {"missing-query": ["--query", str(tmp_path / "nope.jpg"), "--gallery", str(gallery)]}
    args["gallery-file"] = ["--query", str(query), "--gallery", str(query)]
    (tmp_path / "empty").mkdir()
    args["empty-gallery"] = ["--query", str(query), "--gallery", str(tmp_path / "empty")]
    out = tmp_path / "grid.png"
    assert main([*args[case], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_rank_defaults_and_a_folder_as_gallery(gallery):
    """reid.rank(model, query, gallery, topk=10) as the README writes it: rerank defaults to off, and the gallery
    may be a folder (searched recursively) as well as a list of paths."""
    import reid

    model = load_model()
    query = sorted((gallery / "query").iterdir())[0]
    folder = gallery / "bounding_box_test"
    paths = sorted(folder.iterdir())
    by_list = reid.rank(model, query, paths, topk=10)
    by_folder = reid.rank(model, str(query), folder, topk=10)
    assert len(by_list) == 10 and [m.path for m in by_folder] == [m.path for m in by_list]
    assert [m.distance for m in by_folder] == pytest.approx([m.distance for m in by_list], abs=1e-6)
    assert len(reid.rank(model, query, folder, topk=1000)) == len(paths)  # topk beyond the gallery: all of it
    with pytest.raises(ValueError, match="is a folder, not an image"):
        reid.rank(model, folder, paths, topk=3)


def test_unreadable_gallery_files_are_skipped_with_a_warning_each(gallery, tmp_path, capsys):
    folder = tmp_path / "gallery"
    folder.mkdir()
    good = sorted((gallery / "bounding_box_test").iterdir())[:6]
    for path in good:
        (folder / path.name).write_bytes(path.read_bytes())
    broken = [folder / "0001_c1_broken.jpg", folder / "nested" / "notes.png"]
    broken[0].write_bytes(good[0].read_bytes()[:40])  # a truncated JPEG
    broken[1].parent.mkdir()
    broken[1].write_text("not an image")
    query = sorted((gallery / "query").iterdir())[0]
    out = tmp_path / "grid.png"
    assert main(["--query", str(query), "--gallery", str(folder), "--topk", "20", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if ": warning: " in line]
    assert len(warned) == 2
    for path in broken:
        assert sum(str(path) in line and "skipped" in line for line in warned) == 1
    ranked = [line.split()[-1] for line in captured.out.splitlines() if line[:4].strip().isdigit()]
    assert sorted(Path(p).name for p in ranked) == sorted(p.name for p in good)
    assert out.is_file()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(rank(load_model(), query, folder, topk=20)) == 6  # from Python: a warning each
    skipped = [str(w.message) for w in caught if w.category is reid_search.SkippedImageWarning]
    assert len(skipped) == 2 and all(any(str(path) in m for m in skipped) for path in broken)


@pytest.mark.parametrize(
    "case, message",
    [
        ("text-query", "--query {query}: not a readable image"),
        ("folder-query", "--query {query}: is a folder, not an image"),
        ("topk-0", "--topk must be at least 1, got 0"),
        ("missing-gallery", "--gallery {gallery}: no such folder"),
    ],
)
def test_messages_name_the_option_and_the_problem(gallery, tmp_path, capsys, case, message):
    query = {"text-query": tmp_path / "notes.jpg", "folder-query": tmp_path}.get(case, tmp_path / "q.jpg")
    (tmp_path / "notes.jpg").write_text("a text file named like a photo")
    first = sorted((gallery / "query").iterdir())[0]
    (tmp_path / "q.jpg").write_bytes(first.read_bytes())
    folder = tmp_path / "missing" if case == "missing-gallery" else gallery / "bounding_box_test"
    out = tmp_path / "grid.png"
    topk = "0" if case == "topk-0" else "3"
    assert main(["--query", str(query), "--gallery", str(folder), "--topk", topk, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m reid.search: error: ")
    assert message.format(query=query, gallery=folder) in err[0]
    assert "images:" not in err[0] and "no such file" not in err[0] or case == "missing-gallery"
    assert not out.exists()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--topk TOPK how many of the nearest gallery images to show (default: 10)" in text
    assert "--device {auto,cpu,cuda} where the model runs" in text


def test_ranked_list_has_headings_and_a_large_topk_wraps_into_rows(gallery, tmp_path, capsys):
    query = sorted((gallery / "query").iterdir())[0]
    folder = gallery / "bounding_box_test"
    n = len(list(folder.iterdir()))
    assert n > reid_search.COLUMNS
    out = tmp_path / "grid.png"
    assert main(["--query", str(query), "--gallery", str(folder), "--topk", "500", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "distance", "person", "camera", "file"]
    assert sum(line[:4].strip().isdigit() for line in lines) == n
    tile_w, tile_h = reid_search.TILE[0] + 8, reid_search.TILE[1] + 30
    with Image.open(out) as grid:
        assert grid.width == tile_w * (1 + reid_search.COLUMNS) + 12  # ten to a row, not one long row
        assert grid.height == tile_h * -(-n // reid_search.COLUMNS)


def test_ctrl_c_exits_130_and_writes_nothing(gallery, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reid_search, "rank", interrupted)
    query = sorted((gallery / "query").iterdir())[0]
    out = tmp_path / "grid.png"
    assert main(["--query", str(query), "--gallery", str(gallery / "bounding_box_test"), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip() == "python -m reid.search: interrupted: nothing written"
    assert not out.exists()


def test_help_answers_without_torch_and_without_warnings():
    """`python -m reid.search --help` parses its arguments before importing torch, and the package does not
    import the command module (which made `-m reid.search` print a RuntimeWarning)."""
    result, imported = help_and_imports("reid.search")
    assert result.returncode == 0 and "usage: python -m reid.search" in result.stdout
    assert {"reid", "argparse"} <= imported
    assert not {"torch", "timm", "lightning", "vision"} & imported
    assert "RuntimeWarning" not in result.stderr and "Traceback" not in result.stderr


def test_rerank_with_nothing_to_tell_apart_says_what_the_caller_can_do(gallery, tmp_path, capsys):
    """A gallery holding only a copy of the query leaves re-ranking nothing to scale by: the error is rank's own
    (re-ranking needs a different gallery image, or rerank off), not re_ranking's about matrices the caller never
    passed; that low-level check stays for direct callers."""
    import numpy as np

    from reid import re_ranking

    query = sorted((gallery / "query").iterdir())[0]
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / query.name).write_bytes(query.read_bytes())
    model = load_model()
    with pytest.raises(ValueError, match="rerank") as error:
        rank(model, query, folder, rerank=True)
    message = str(error.value)
    assert "differs from the query" in message and "rerank=False" in message
    assert not any(name in message for name in ("q_q", "q_g", "g_g"))
    assert [m.path.name for m in rank(model, query, folder, rerank=False)] == [query.name]  # the way out works
    out = tmp_path / "grid.png"
    assert main(["--query", str(query), "--gallery", str(folder), "--rerank", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "without --rerank" in err[0] and not out.exists()
    with pytest.raises(ValueError, match="every image needs a nonzero distance"):
        re_ranking(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))
