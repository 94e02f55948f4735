"""The synthetic re-id generator: Market-1501 layout and names, splits, determinism, domain styles and the CLI."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid.data import synthetic

# Market-1501: 4-digit person id, camera, sequence, 6-digit frame, 2-digit box index
MARKET = re.compile(r"^(\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
SPLITS = ("bounding_box_train", "query", "bounding_box_test")
SIZE = dict(identities=8, cameras=3, images_per_camera=2)


def parse(folder: Path) -> list[tuple[int, int]]:
    """(pid, camera) per file; fails on any name that is not Market's."""
    out = []
    for f in sorted(folder.iterdir()):
        m = MARKET.match(f.name)
        assert m, f"not a Market name: {f.name}"
        out.append((int(m[1]), int(m[2])))
    return out


def load(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f), np.float32) / 255 for f in sorted(folder.glob("*.jpg"))])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    return out, synthetic.generate(out, seed=3, **SIZE)


def test_market_layout_names_and_counts(data):
    out, meta = data
    n, cams, k = SIZE["identities"], SIZE["cameras"], SIZE["images_per_camera"]
    for domain in ("source", "target"):
        folder = out / domain
        assert sorted(p.name for p in folder.iterdir()) == sorted([*SPLITS, "meta.json"])
        items = {split: parse(folder / split) for split in SPLITS}
        train_ids = {p for p, _ in items["bounding_box_train"]}
        test_ids = {p for p, _ in items["bounding_box_test"]}
        assert train_ids == set(range(1, n // 2 + 1)) and test_ids == set(range(n // 2 + 1, n + 1))
        assert {p for p, _ in items["query"]} == test_ids
        assert all(1 <= c <= cams for split in SPLITS for _, c in items[split])
        assert len(items["bounding_box_train"]) == n // 2 * cams * k
        assert len(items["query"]) == n // 2 * math.ceil(cams / 2)
        assert len(items["query"]) + len(items["bounding_box_test"]) == n // 2 * cams * k
        written = json.loads((folder / "meta.json").read_text())
        assert written["splits"]["query"] == {"images": len(items["query"]), "ids": n // 2}
        assert written == json.loads(json.dumps(meta[domain]))
        assert len(written["camera_styles"]) == cams


def test_every_query_has_a_gallery_match_in_another_camera(data):
    out, _ = data
    for domain in ("source", "target"):
        gallery = set(parse(out / domain / "bounding_box_test"))
        for pid, cam in parse(out / domain / "query"):
            assert any(p == pid and c != cam for p, c in gallery), (domain, pid, cam)


def test_images_decode_at_size_and_identity_shows(data):
    out, _ = data
    image = Image.open(next((out / "source" / "query").glob("*.jpg")))
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (32, 64)
    # same pose and background: one identity renders the same twice, two identities differ clearly
    rng = np.random.default_rng(0)
    a, b = synthetic.Person.sample(rng), synthetic.Person.sample(rng)
    pose = synthetic.Pose(view="front")
    ra = synthetic.render_figure(a, pose, height=64, width=32)
    assert ra.shape == (64, 32, 3) and ra.min() >= 0 and ra.max() <= 1
    assert np.array_equal(ra, synthetic.render_figure(a, pose, height=64, width=32))
    assert np.abs(ra - synthetic.render_figure(b, pose, height=64, width=32)).mean() > 0.05
    assert ra.std() > 0.05  # a figure, not a blank frame


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    small = dict(identities=4, cameras=2, images_per_camera=1, domains=("target",))
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        synthetic.generate(tmp_path / name, seed=seed, **small)

    def files(name):
        return {p.relative_to(tmp_path / name): p.read_bytes() for p in sorted((tmp_path / name).rglob("*.*"))}

    assert files("a") == files("b")
    # files sorted by name line up by (pid, camera, shot) whatever the seed; the pictures differ
    for split in SPLITS:
        a, c = load(tmp_path / "a" / "target" / split), load(tmp_path / "c" / "target" / split)
        assert a.shape == c.shape and np.abs(a - c).mean() > 0.05


def test_domains_differ_in_camera_style(data):
    out, meta = data
    stats = {}
    for domain in ("source", "target"):
        x = load(out / domain / "bounding_box_train")
        stats[domain] = (x.mean((0, 1, 2)), x.std((0, 1, 2)))
    # target cameras are darker and flatter (low light, low contrast)
    assert stats["target"][0].mean() < stats["source"][0].mean() - 0.05
    assert (stats["target"][1] < stats["source"][1] - 0.03).all()
    # their colour casts are stronger (gains further from 1) and share one direction (a domain cast), while the
    # source cameras' casts point every way
    log_gains = {d: np.log([s["gains"] for s in meta[d]["camera_styles"]]) for d in meta}
    strength = {d: np.abs(g).max(1).mean() for d, g in log_gains.items()}
    assert strength["target"] > 1.5 * strength["source"]
    unit = {d: g / np.linalg.norm(g, axis=1, keepdims=True) for d, g in log_gains.items()}
    agreement = {d: np.linalg.norm(u.mean(0)) for d, u in unit.items()}  # 1: all cameras cast the same way
    assert agreement["target"] > 0.9 and agreement["source"] < 0.5
    assert min(s["quality"] for s in meta["source"]["camera_styles"]) > max(
        s["quality"] for s in meta["target"]["camera_styles"]
    )


def test_strength_zero_gives_an_ideal_camera():
    style = synthetic.CameraStyle.sample(synthetic.FAMILIES["target"], np.random.default_rng(0), 1.0, strength=0.0)
    assert style.gains == (1.0, 1.0, 1.0) and style.blur == 0 and style.noise == 0 and style.gamma == 1
    image = np.random.default_rng(1).random((16, 8, 3))
    assert np.allclose(style.apply(image, np.random.default_rng(2)), image, atol=0.11)  # only shot-to-shot light


def test_regenerating_removes_stale_files(tmp_path):
    synthetic.generate(tmp_path, identities=6, cameras=2, images_per_camera=1, domains=("source",))
    synthetic.generate(tmp_path, identities=4, cameras=2, images_per_camera=1, domains=("source",))
    pids = {p for split in SPLITS for p, _ in parse(tmp_path / "source" / split)}
    assert pids == {1, 2, 3, 4}
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left behind


@pytest.mark.parametrize(
    "args,message",
    [
        (["--cameras", "1"], "--cameras"),
        (["--identities", "1"], "--identities"),
        (["--images-per-camera", "0"], "--images-per-camera"),
        (["--height", "8"], "--height"),
        (["--domains", "source,mars"], "--domains"),
        (["--seed", "x"], "--seed"),
        (["--strength", "5"], "--strength"),
    ],
)
def test_cli_rejects_bad_arguments_in_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    try:
        code = synthetic.main(["--out", str(out), *args])
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_cli_rejects_an_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert synthetic.main(["--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and err.count("\n") == 1


def test_cli_writes_both_domains(tmp_path, capsys):
    # in-process: a subprocess would spend most of its time importing torch through reid.data's __init__
    args = ["--out", str(tmp_path), "--identities", "4", "--cameras", "2", "--images-per-camera", "1"]
    assert synthetic.main(args) == 0
    summary = capsys.readouterr().out
    assert "source: bounding_box_train 4 images / 2 ids" in summary and "target:" in summary
    for domain in ("source", "target"):
        meta = json.loads((tmp_path / domain / "meta.json").read_text())
        assert meta["identities"] == 4 and meta["splits"]["bounding_box_train"]["images"] == 4
