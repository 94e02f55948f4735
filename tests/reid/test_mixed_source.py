"""The mixed-style source: parts renumbered apart (identities and cameras), styles drawn per part away from the
held-out presets, the train/test split of every part kept, a base folder copied in first, and the errors."""

import json
import re

import pytest

from reid.data import mixed_source, read_dataset
from reid.data.domains import DOMAINS, TUNED_SEEDS
from reid.data.synthetic import FIGURES, SPLITS, generate

MARKET = re.compile(r"^(\d{4})_c(\d+)s1_\d{6}_00\.jpg$")


def test_parts_keep_their_identities_and_cameras_apart(tmp_path):
    meta = mixed_source.generate_mixed_source(tmp_path, parts=3, identities=4, cameras=(2, 3), height=32, width=16)
    names = {split: [f.name for f in (tmp_path / "source" / split).glob("*.jpg")] for split in SPLITS}
    cams_of_part = [set(), set(), set()]
    for name in sum(names.values(), []):
        pid, cam = (int(v) for v in MARKET.match(name).groups())
        cams_of_part[(pid - 1) // 4].add(cam)  # identities 1-4 are part 0's, 5-8 part 1's, ...
    assert sum(len(c) for c in cams_of_part) == len(set().union(*cams_of_part)) == meta["cameras"]
    assert [len(c) for c in cams_of_part] == [p["cameras"] for p in meta["parts"]]
    assert sorted({int(n[:4]) for n in names["bounding_box_train"]}) == [1, 2, 5, 6, 9, 10]  # each part's first half
    assert {int(n[:4]) for n in names["query"]} == {3, 4, 7, 8, 11, 12}
    assert len(read_dataset("market1501", tmp_path / "source").train) == len(names["bounding_box_train"])
    assert json.loads((tmp_path / "source" / "meta.json").read_text())["splits"]["bounding_box_train"]["ids"] == 6
    seeds = {p["seed"] for p in meta["parts"]}
    assert len(seeds) == 3 and not seeds & (set(TUNED_SEEDS) | {s.seed for s in DOMAINS.values()})
    presets = [tuple(vars(f).values()) for f in FIGURES.values()]
    assert all(tuple(p["figure"].values()) not in presets for p in meta["parts"])
    assert not list(tmp_path.glob(".mixed_source_parts"))


def test_errors_name_the_option(tmp_path, capsys):
    with pytest.raises(ValueError, match="parts"):
        mixed_source.generate_mixed_source(tmp_path, parts=0)
    with pytest.raises(ValueError, match="99 cameras"):
        mixed_source.generate_mixed_source(tmp_path, parts=30, cameras=(2, 4))
    assert mixed_source.main(["--out", str(tmp_path), "--height", "8"]) == 2
    assert "--height" in capsys.readouterr().err


def test_base_folder_is_copied_first_and_the_parts_follow_it(tmp_path):
    generate(tmp_path / "pair", identities=4, cameras=3, images_per_camera=1, height=32, width=16, domains=("source",))
    base = tmp_path / "pair" / "source"
    meta = mixed_source.generate_mixed_source(tmp_path / "mixed", parts=2, identities=4, height=32, width=16, base=base)
    out = tmp_path / "mixed" / "source"
    for split in SPLITS:
        for image in (base / split).glob("*.jpg"):
            assert (out / split / image.name).read_bytes() == image.read_bytes()
    added = [MARKET.match(f.name).groups() for s in SPLITS for f in (out / s).glob("*.jpg")]
    added = [(int(p), int(c)) for p, c in added if int(p) > 4]
    assert {p for p, _ in added} == set(range(101, 109))  # the next hundred above the base's identities 1-4
    assert min(c for _, c in added) == 4 and max(c for _, c in added) == meta["cameras"]  # after cameras 1-3
    assert meta["identities"] == 12
    with pytest.raises(ValueError, match="base"):
        mixed_source.generate_mixed_source(tmp_path / "x", parts=1, identities=2, base=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="base"):
        mixed_source.generate_mixed_source(tmp_path / "mixed", parts=1, identities=2, base=out)
