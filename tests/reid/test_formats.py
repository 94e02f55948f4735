"""Dataset readers against tiny fixtures laid out as each format's specification describes."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid.data import ReIDSplits, Sample, read_dataset, split_held_out
from reid.data.formats import read_cuhk03_np, read_folder, read_market1501, read_msmt17


def jpeg(path: Path, color=(120, 60, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), color).save(path)
    return path


def make_market(folder: Path) -> Path:
    """Market-1501: bounding_box_train / query / bounding_box_test, names <pid>_c<cam>s<seq>_<frame>_<box>.jpg."""
    for name in ("0002_c1s1_000451_03", "0002_c2s1_000301_01", "0007_c3s3_005678_02", "0010_c6s4_002202_01"):
        jpeg(folder / "bounding_box_train" / f"{name}.jpg")
    for name in ("0001_c1s1_001051_00", "0001_c5s1_002026_01"):
        jpeg(folder / "query" / f"{name}.jpg")
    for name in ("0001_c2s1_000301_01", "0000_c1s1_000151_01", "-1_c1s1_000401_03", "0001_c1s1_001101_02"):
        jpeg(folder / "bounding_box_test" / f"{name}.jpg")
    (folder / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0")
    return folder


def test_market1501(tmp_path):
    root = make_market(tmp_path / "Market-1501-v15.09.15")
    splits = read_market1501(root)
    assert isinstance(splits, ReIDSplits)
    assert sorted((s.pid, s.camid) for s in splits.train) == [(0, 0), (0, 1), (1, 2), (2, 5)]
    assert splits.num_train_pids == 3 and splits.num_cameras == 6
    assert sorted((s.pid, s.camid) for s in splits.query) == [(1, 0), (1, 4)]
    gallery = sorted((s.pid, s.camid) for s in splits.gallery)
    assert gallery == [(0, 0), (1, 0), (1, 1)]  # junk dropped, distractor kept, Thumbs.db ignored
    assert all(Path(s.path).is_file() and isinstance(s, Sample) for s in splits.gallery)
    # the parent folder works too, and gives the same lists
    assert read_market1501(tmp_path) == splits
    assert read_dataset("market1501", str(tmp_path)) == splits


def test_market1501_errors(tmp_path):
    root = make_market(tmp_path / "market")
    with pytest.raises(ValueError, match="bounding_box_train"):
        read_market1501(tmp_path)
    with pytest.raises(NotADirectoryError, match="not a folder"):
        read_market1501(tmp_path / "nowhere")
    jpeg(root / "query" / "person.jpg")
    with pytest.raises(ValueError, match="person.jpg"):
        read_market1501(root)
    (root / "query" / "person.jpg").unlink()
    for image in (root / "query").iterdir():
        image.unlink()
    with pytest.raises(ValueError, match=r"query: no images"):
        read_market1501(root)
    (root / "query").rmdir()
    with pytest.raises(ValueError, match=r"query: missing folder"):
        read_market1501(root)


def make_cuhk03(parent: Path) -> Path:
    """CUHK03-NP: cuhk03-np/{detected,labeled}/{bounding_box_train,query,bounding_box_test}/<pid>_c<cam>_<n>.png"""
    for variant, offset in (("detected", 0), ("labeled", 100)):
        base = parent / "cuhk03-np" / variant
        for pid in (1, 3, 5):
            for cam in (1, 2):
                path = base / "bounding_box_train" / f"{pid:04d}_c{cam}_{pid * 10 + cam}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 16), (pid + offset, 0, 0)).save(path)
        for folder, names in (("query", ["0002_c1_1"]), ("bounding_box_test", ["0002_c2_6", "0004_c1_2"])):
            for name in names:
                path = base / folder / f"{name}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 16)).save(path)
    return parent / "cuhk03-np"


def test_cuhk03_np(tmp_path):
    folder = make_cuhk03(tmp_path)
    detected = read_cuhk03_np(tmp_path)
    assert detected.num_train_pids == 3 and len(detected.train) == 6 and detected.num_cameras == 2
    assert all("/detected/" in s.path for s in detected.train + detected.query + detected.gallery)
    labeled = read_dataset("cuhk03np", folder, variant="labeled")
    assert all("/labeled/" in s.path for s in labeled.train)
    assert sorted({s.pid for s in labeled.train}) == [0, 1, 2]
    assert [(s.pid, s.camid) for s in labeled.query] == [(2, 0)]
    with pytest.raises(ValueError, match="variant"):
        read_cuhk03_np(tmp_path, variant="both")
    with pytest.raises(ValueError, match="cuhk03-np"):
        read_cuhk03_np(tmp_path / "cuhk03-np" / "detected")


def make_msmt(parent: Path, version: str) -> Path:
    """MSMT17_V1: train/ test/ + list_*.txt; MSMT17_V2: mask_train_v2/ mask_test_v2/ + list_*.txt.
    Lines '<pid folder>/<pid>_<n>_<cam>_<date><time>_<frame>_<k>.jpg <pid>'."""
    base = parent / f"MSMT17_{version}"
    train_dir, test_dir = ("train", "test") if version == "V1" else ("mask_train_v2", "mask_test_v2")
    lists = {
        "train": [("0000", 0, 1), ("0000", 1, 3), ("0001", 2, 15), ("0002", 3, 2)],
        "val": [("0000", 4, 5), ("0003", 5, 4)],
        "query": [("0000", 0, 2)],
        "gallery": [("0000", 1, 7), ("0001", 2, 2)],
    }
    for name, rows in lists.items():
        folder = base / (train_dir if name in ("train", "val") else test_dir)
        lines = []
        for pid, n, cam in rows:
            rel = f"{pid}/{pid}_{n:03d}_{cam:02d}_0303morning_{n:04d}_0.jpg"
            jpeg(folder / rel)
            lines.append(f"{rel} {int(pid)}")
        (base / f"list_{name}.txt").write_text("\n".join(lines) + "\n")
    return base


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt17(tmp_path, version):
    base = make_msmt(tmp_path, version)
    splits = read_msmt17(tmp_path)
    assert len(splits.train) == 6 and splits.num_train_pids == 4  # val merged by default
    assert sorted(s.camid for s in splits.train) == [0, 1, 2, 3, 4, 14]
    assert all(Path(s.path).is_file() for s in splits.train + splits.query + splits.gallery)
    assert [(s.pid, s.camid) for s in splits.query] == [(0, 1)]
    no_val = read_dataset("msmt17", base, use_val=False)
    assert len(no_val.train) == 4 and no_val.num_train_pids == 3
    assert {s.pid for s in no_val.train} == {0, 1, 2}


def test_msmt17_errors(tmp_path):
    base = make_msmt(tmp_path, "V1")
    (base / "list_query.txt").write_text("0000/0000_000_02_0303morning_0000_0.jpg\n")
    with pytest.raises(ValueError, match=r"list_query.txt:1"):
        read_msmt17(base)
    (base / "list_query.txt").write_text("0000/badname.jpg 0\n")
    with pytest.raises(ValueError, match=r"list_query.txt:1"):
        read_msmt17(base)
    (base / "list_query.txt").unlink()
    with pytest.raises(ValueError, match="list_query.txt: missing"):
        read_msmt17(base)
    (base / "test").rename(base / "elsewhere")
    with pytest.raises(ValueError, match="missing image folder"):
        read_msmt17(base)


@pytest.mark.parametrize("split, line", [("train", 3), ("gallery", 2)])
def test_msmt17_camera_00_is_an_error_naming_the_list_and_line(tmp_path, split, line):
    """MSMT17 numbers its cameras 01..15 (camid = camera - 1); camera 00 would become camid -1, which indexes a
    model's camera-specific parts from the end. Rejected as the Market reader rejects c0."""
    base = make_msmt(tmp_path, "V1")
    folder = base / ("train" if split == "train" else "test")
    rel = "0009/0009_000_00_0303morning_0000_0.jpg"
    jpeg(folder / rel)
    rows = (base / f"list_{split}.txt").read_text().splitlines()
    rows.insert(line - 1, f"{rel} 9")
    (base / f"list_{split}.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=rf"list_{split}.txt:{line}: camera 00 .*numbered from 01"):
        read_msmt17(base)
    jpeg(make_market(tmp_path / "market") / "query" / "0003_c0s1_000001_01.jpg")
    with pytest.raises(ValueError, match=r"_c0s1_.*camera c0"):  # the Market reader's rule, for comparison
        read_market1501(tmp_path / "market")


def test_folder(tmp_path):
    jpeg(tmp_path / "train" / "12_c1_a.jpg")
    jpeg(tmp_path / "train" / "sub" / "12_c2_b.png")
    jpeg(tmp_path / "train" / "40_c3_frame_0001.jpg")
    jpeg(tmp_path / "query" / "7_c1_q.jpg")
    jpeg(tmp_path / "gallery" / "7_c2_g.jpg")
    jpeg(tmp_path / "gallery" / "-1_c2_junk.jpg")
    (tmp_path / "gallery" / "notes.txt").write_text("not an image")
    splits = read_dataset("folder", tmp_path)
    assert sorted((s.pid, s.camid) for s in splits.train) == [(0, 0), (0, 1), (1, 2)]
    assert [(s.pid, s.camid) for s in splits.gallery] == [(7, 1)]
    jpeg(tmp_path / "query" / "frame_0001.jpg")
    with pytest.raises(ValueError, match="frame_0001.jpg"):
        read_folder(tmp_path)
    with pytest.raises(NotADirectoryError, match="not a folder"):
        read_folder(tmp_path / "missing")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="market1501, cuhk03np, msmt17, folder"):
        read_dataset("dukemtmc", "/data")


def _samples(rng: np.random.Generator, ids: int = 20) -> list[Sample]:
    out = []
    for pid in range(ids):
        cams = rng.choice(6, size=1 + pid % 3, replace=False)
        for i in range(4):
            out.append(Sample(f"{pid}_{i}.jpg", pid, int(cams[i % len(cams)])))
    return out


def test_split_held_out():
    samples = _samples(np.random.default_rng(0))
    train, query, gallery = split_held_out(samples, fraction=0.25, seed=3)
    held = {s.pid for s in query + gallery}
    assert len(held) == 5
    assert {int(s.path.split("_")[0]) for s in train}.isdisjoint(held)
    assert sorted({s.pid for s in train}) == list(range(15))
    assert len(train) + len(query) + len(gallery) == len(samples)
    pairs = [(s.pid, s.camid) for s in query]
    assert len(pairs) == len(set(pairs))
    for s in query:  # only identities seen by two cameras are queried
        assert any(g.pid == s.pid and g.camid != s.camid for g in query + gallery)
    assert split_held_out(samples, 0.25, seed=3) == (train, query, gallery)
    assert split_held_out(samples, 0.25, seed=4) != (train, query, gallery)
    assert split_held_out(samples, 0.0) == (samples, [], [])
    with pytest.raises(ValueError, match="fraction"):
        split_held_out(samples, 1.0)
    with pytest.raises(ValueError, match="leaves none"):
        split_held_out(samples[:4], 0.5)
