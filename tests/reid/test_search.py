"""python -m reid.search: the ranked grid, the order by distance, the shipped default model, and bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from PIL import Image

from reid import load_model
from reid.data.synthetic import generate
from reid.search import main, rank


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
