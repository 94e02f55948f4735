"""Held-out target domains and the generator features they use: presets span the issue's ranges with their own
seeds, unequal images per identity and camera land on disk as drawn, figure styles and the camera resolution
effect change the images (and leave the defaults' images as they were), and the CLI."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from reid.data import domains, synthetic
from reid.data.domains import DOMAINS, TUNED_SEEDS, DomainSpec

MARKET = re.compile(r"^(\d{4})_c(\d)s1_\d{6}_00\.jpg$")


def test_presets_cover_the_held_out_ranges():
    specs = list(DOMAINS.values())
    assert len(specs) >= 4
    seeds = [s.seed for s in specs]
    assert len(set(seeds)) == len(seeds) and not set(seeds) & set(TUNED_SEEDS)
    assert {s.cameras for s in specs} >= {2, 6} and all(2 <= s.cameras <= 6 for s in specs)
    assert min(s.identities for s in specs) >= 40 and max(s.identities for s in specs) <= 200
    assert len({s.figure for s in specs}) == len(specs)  # every domain draws its people its own way
    assert min(s.strength for s in specs) <= 0.5 and max(s.strength for s in specs) >= 1.0  # mild to strong
    assert any(s.family.resolution[0] < 1 for s in specs)
    for spec in specs:
        counts = spec.image_counts()
        assert counts.shape == (spec.identities, spec.cameras)
        assert ((counts > 0).sum(1) >= 2).all()  # every identity in two cameras at least
        assert len(np.unique(counts)) > 1  # unequal images per identity and camera
        assert np.array_equal(counts, spec.image_counts())  # the same every time


def test_spec_rejects_bad_settings():
    good = DOMAINS["harbour"]
    fields = dict(good.__dict__)
    for change, message in (
        (dict(seed=TUNED_SEEDS[0]), "seed"),
        (dict(figure="sketch"), "figure"),
        (dict(cameras=7), "cameras"),
        (dict(identities=20), "identities"),
        (dict(images=(3, 2)), "images"),
        (dict(coverage=0.0), "coverage"),
    ):
        with pytest.raises(ValueError, match=message):
            DomainSpec(**{**fields, **change})


def test_unequal_counts_are_written_and_queries_keep_a_match(tmp_path):
    counts = np.array([[2, 0, 1], [1, 3, 0], [0, 1, 2], [2, 2, 2], [1, 0, 3], [0, 2, 1]])
    meta = synthetic.generate_domain(
        tmp_path / "d", synthetic.FAMILIES["target"], identities=6, cameras=3, images_per_camera=3, height=32,
        width=16, seed=5, stream=9, counts=counts, figure=synthetic.FIGURES["stocky"],
    )  # fmt: skip
    found = np.zeros_like(counts)
    by_split = {}
    for split in synthetic.SPLITS:
        by_split[split] = [tuple(map(int, MARKET.match(f.name).groups())) for f in (tmp_path / "d" / split).iterdir()]
        for pid, cam in by_split[split]:
            found[pid - 1, cam - 1] += 1
    assert np.array_equal(found, counts)
    assert meta["images_per_identity_and_camera"] == counts.tolist() and meta["figure"]["width"] == 1.3
    for pid, cam in by_split["query"]:
        assert any(p == pid and c != cam for p, c in by_split["bounding_box_test"])
    with pytest.raises(ValueError, match="counts"):  # identity 1 seen by one camera only
        synthetic.generate_domain(
            tmp_path / "e", synthetic.FAMILIES["target"], identities=2, cameras=2, images_per_camera=1, height=32,
            width=16, seed=5, stream=9, counts=np.array([[1, 0], [1, 1]]),
        )  # fmt: skip


def test_figure_styles_change_the_drawing_and_the_default_does_not():
    person = synthetic.Person.sample(np.random.default_rng(0))
    pose = synthetic.Pose()
    plain = synthetic.render_figure(person, pose)
    assert np.array_equal(synthetic.render_figure(person, pose, figure=synthetic.FIGURES["default"]), plain)
    covered = {name: (np.abs(synthetic.render_figure(person, pose, figure=f) - 0.5).sum(-1) > 0.01).mean()
               for name, f in synthetic.FIGURES.items()}  # fmt: skip
    assert covered["stocky"] > covered["default"] * 1.1 > covered["slender"] * 1.2  # wider bodies cover more
    flat = synthetic.render_figure(person, pose, figure=synthetic.FIGURES["flat"])
    assert len(np.unique(flat.reshape(-1, 3), axis=0)) < len(np.unique(plain.reshape(-1, 3), axis=0))


def test_resolution_removes_detail_and_full_resolution_is_untouched():
    image = np.random.default_rng(1).random((64, 32, 3))
    assert synthetic.resample(image, 1.0) is image
    low = synthetic.resample(image, 0.25)
    assert low.shape == image.shape and 0 <= low.min() and low.max() <= 1
    assert np.abs(np.diff(low, axis=0)).mean() < 0.5 * np.abs(np.diff(image, axis=0)).mean()
    assert abs(low.mean() - image.mean()) < 0.02  # averaging keeps the brightness


def test_cli_writes_a_domain_and_rejects_bad_names(tmp_path, capsys, monkeypatch):
    small = DomainSpec(**{**DOMAINS["harbour"].__dict__, "identities": 40, "images": (1, 1)})
    monkeypatch.setitem(DOMAINS, "harbour", small)
    assert domains.main(["--out", str(tmp_path), "--names", "harbour", "--height", "32", "--width", "16"]) == 0
    assert "harbour: bounding_box_train 40 images / 20 ids" in capsys.readouterr().out
    meta = json.loads((tmp_path / "harbour" / "meta.json").read_text())
    assert meta["seed"] == small.seed and meta["cameras"] == 2
    assert Image.open(next((tmp_path / "harbour" / "query").iterdir())).size == (16, 32)
    assert domains.main(["--out", str(tmp_path / "x"), "--names", "mars"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --names") and err.count("\n") == 1 and not (tmp_path / "x").exists()
