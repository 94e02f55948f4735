"""Re-id dataset formats read into train / query / gallery lists of (image path, person id, camera id).

Every reader takes the folder the user names and builds all paths from it. Training pids are relabelled
0..P-1 (classifier targets); query and gallery keep the dataset's own pids (only equality matters there).
Camera ids are 0-based. A root that is not a folder raises NotADirectoryError, a malformed folder ValueError, each
naming the path and what was expected.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
# Market-1501 "0002_c1s1_000451_03.jpg", CUHK03-NP "0001_c1_1.png" (and DukeMTMC "0001_c2_f0046182.jpg")
_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)(?:s\d+)?_")
_FOLDER_NAME = re.compile(r"^(-?\d+)_c(\d+)_.+")


class Sample(NamedTuple):
    path: str
    pid: int
    camid: int  # 0-based


@dataclass
class ReIDSplits:
    """A dataset's training list (pids 0..P-1) and its test query and gallery lists (original pids)."""

    train: list[Sample]
    query: list[Sample]
    gallery: list[Sample]

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train})

    @property
    def num_cameras(self) -> int:
        """1 + the largest camera id over all splits (camera ids index camera-specific parts of a model)."""
        return 1 + max(s.camid for s in (*self.train, *self.query, *self.gallery))


def relabel(samples: Sequence[Sample]) -> list[Sample]:
    """Map pids to 0..P-1 in increasing order of the original pid."""
    mapping = {pid: i for i, pid in enumerate(sorted({s.pid for s in samples}))}
    return [s._replace(pid=mapping[s.pid]) for s in samples]


def _locate(root: str | Path, marker: str, parents: Sequence[str], dataset: str) -> Path:
    """The folder holding `marker`: root itself or root/<one of parents>."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"root: {root} is not a folder (expected the {dataset} dataset folder)")
    for folder in (root, *(root / p for p in parents)):
        if (folder / marker).exists():
            return folder
    raise ValueError(f"root: expected {root / marker} or {root / parents[0] / marker} ({dataset}), found neither")


def _read_named_images(folder: Path, pattern: re.Pattern, expected: str, recursive: bool = False) -> list[Sample]:
    """Images whose file names carry pid and camera; pid < 0 (junk) is dropped."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: missing folder (expected {expected})")
    files = folder.rglob("*") if recursive else folder.iterdir()
    images = sorted(p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not images:
        raise ValueError(f"{folder}: no images (expected {expected})")
    samples = []
    for path in images:
        match = pattern.match(path.stem)
        if match is None:
            raise ValueError(f"{path}: file name does not match {expected}")
        pid, cam = int(match[1]), int(match[2])
        if cam < 1:
            raise ValueError(f"{path}: camera c{cam}; cameras are numbered from c1")
        if pid >= 0:
            samples.append(Sample(str(path), pid, cam - 1))
    if not samples:
        raise ValueError(f"{folder}: only junk images (pid -1); expected {expected}")
    return samples


def _read_market_layout(folder: Path, expected: str) -> ReIDSplits:
    splits = {
        name: _read_named_images(folder / name, _MARKET_NAME, expected)
        for name in ("bounding_box_train", "query", "bounding_box_test")
    }
    return ReIDSplits(relabel(splits["bounding_box_train"]), splits["query"], splits["bounding_box_test"])


def read_market1501(root: str | Path) -> ReIDSplits:
    """Market-1501. root: the dataset folder (holding bounding_box_train/, query/, bounding_box_test/) or a
    parent holding `Market-1501-v15.09.15/` (or `market1501/`). File names `0002_c1s1_000451_03.jpg`: pid,
    camera c1..c6 -> camid 0..5. Junk (pid -1) is dropped; distractors (pid 0) stay in the gallery."""
    folder = _locate(root, "bounding_box_train", ("Market-1501-v15.09.15", "market1501"), "Market-1501")
    return _read_market_layout(folder, "Market-1501 images named <pid>_c<cam>s<seq>_<frame>_<box>.jpg")


def read_cuhk03_np(root: str | Path, variant: str = "detected") -> ReIDSplits:
    """CUHK03-NP, the new protocol of Zhong et al. (767 training / 700 test ids). root: the `cuhk03-np` folder
    (holding detected/ and labeled/) or its parent; each variant holds bounding_box_train/, query/ and
    bounding_box_test/ with Market-style names `0001_c1_1.png` (cameras c1, c2 -> camid 0, 1)."""
    if variant not in ("detected", "labeled"):
        raise ValueError(f"variant: expected 'detected' or 'labeled', got {variant!r}")
    folder = _locate(root, variant, ("cuhk03-np", "CUHK03-NP"), "CUHK03-NP") / variant
    return _read_market_layout(folder, f"CUHK03-NP {variant} images named <pid>_c<cam>_<n>.png")


def _read_list(list_path: Path, image_folder: Path) -> list[Sample]:
    samples = []
    for number, line in enumerate(list_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        parts = Path(fields[0]).name.split("_")
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit() or len(parts) < 3 or not parts[2].isdigit():
            raise ValueError(
                f"{list_path}:{number}: expected '<folder>/<pid>_<n>_<camera>_<...>.jpg <pid>', got {line!r}"
            )
        if int(parts[2]) < 1:
            raise ValueError(
                f"{list_path}:{number}: camera {parts[2]} in {fields[0]}; MSMT17 cameras are numbered from 01"
            )
        samples.append(Sample(str(image_folder / fields[0]), int(fields[1]), int(parts[2]) - 1))
    if not samples:
        raise ValueError(f"{list_path}: empty list (expected lines '<path> <pid>')")
    return samples


def read_msmt17(root: str | Path, use_val: bool = True) -> ReIDSplits:
    """MSMT17, V1 or V2. root: the dataset folder (holding list_{train,val,query,gallery}.txt and the image
    folders train/ + test/ (V1) or mask_train_v2/ + mask_test_v2/ (V2)) or a parent holding `MSMT17_V1/`,
    `MSMT17_V2/` or `MSMT17/`. List lines are `<path relative to the image folder> <pid>`; the camera is
    int(file_name.split('_')[2]) - 1 (cameras 01..15 -> camid 0..14; camera 00 is an error naming the line).

    use_val: merge list_val (more images of the training ids) into train, as torchreid, MMT and SpCL do
    (32,621 images, 1,041 ids); False trains on list_train alone (30,248 images)."""
    folder = _locate(root, "list_train.txt", ("MSMT17_V2", "MSMT17_V1", "MSMT17", "msmt17"), "MSMT17")

    def image_folder(names: tuple[str, str]) -> Path:
        for name in names:
            if (folder / name).is_dir():
                return folder / name
        raise ValueError(f"{folder}: missing image folder (expected {folder / names[0]} or {folder / names[1]})")

    def read(name: str, images: Path) -> list[Sample]:
        path = folder / f"list_{name}.txt"
        if not path.is_file():
            raise ValueError(f"{path}: missing list file (expected lines '<path> <pid>')")
        return _read_list(path, images)

    train_images, test_images = image_folder(("train", "mask_train_v2")), image_folder(("test", "mask_test_v2"))
    train = read("train", train_images) + (read("val", train_images) if use_val else [])
    return ReIDSplits(relabel(train), read("query", test_images), read("gallery", test_images))


def read_folder(root: str | Path) -> ReIDSplits:
    """A custom dataset: root/{train,query,gallery}/ holding images named `<pid>_c<cam>_<anything>.<ext>`
    (sub-folders are searched too). Cameras are numbered from c1 as in Market-1501 (c1 -> camid 0); pid -1
    marks junk and is dropped. Any other image name is an error that names the file."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"root: {root} is not a folder (expected {root}/train, query and gallery)")
    expected = "images named <pid>_c<cam>_<anything>.<ext>, e.g. 12_c3_frame0045.jpg"
    splits = {
        name: _read_named_images(root / name, _FOLDER_NAME, expected, True) for name in ("train", "query", "gallery")
    }
    return ReIDSplits(relabel(splits["train"]), splits["query"], splits["gallery"])


DATASETS: dict[str, Callable[..., ReIDSplits]] = {
    "market1501": read_market1501,
    "cuhk03np": read_cuhk03_np,
    "msmt17": read_msmt17,
    "folder": read_folder,
}


def read_dataset(name: str, root: str | Path, **kwargs) -> ReIDSplits:
    """Read dataset `name` (a key of DATASETS) from `root`; kwargs go to its reader."""
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown name {name!r}; known: {', '.join(DATASETS)}")
    reader = DATASETS[name]
    options = list(inspect.signature(reader).parameters)[1:]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ValueError(f"{name}: unknown options {unknown}; it accepts {options or 'none'}")
    return reader(root, **kwargs)


def split_held_out(
    samples: Sequence[Sample], fraction: float = 0.2, seed: int = 0
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Hold out `fraction` of the identities of a training list for model selection, so that the test set
    is never used to choose a checkpoint. Returns (train, val_query, val_gallery): train keeps the other
    identities (relabelled 0..P-1); val_query holds one image per (identity, camera) of held-out identities
    seen by at least two cameras, val_gallery the rest. Deterministic for a given seed."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction: expected a value in [0, 1), got {fraction}")
    pids = sorted({s.pid for s in samples})
    count = max(1, round(fraction * len(pids))) if fraction > 0 else 0
    if count >= len(pids):
        raise ValueError(f"fraction: holding out {count} of {len(pids)} identities leaves none for training")
    held = set(np.random.default_rng(seed).permutation(pids)[:count].tolist())
    kept = relabel([s for s in samples if s.pid not in held])
    cameras: dict[int, set[int]] = {}
    for s in samples:
        if s.pid in held:
            cameras.setdefault(s.pid, set()).add(s.camid)
    query, gallery, seen = [], [], set()
    for s in samples:
        if s.pid not in held:
            continue
        if len(cameras[s.pid]) >= 2 and (s.pid, s.camid) not in seen:
            seen.add((s.pid, s.camid))
            query.append(s)
        else:
            gallery.append(s)
    return kept, query, gallery
