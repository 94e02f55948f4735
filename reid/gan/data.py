"""Stage 0's data: (path, pid, camid) samples of a training split, images as [-1, 1] tensors, unpaired images
of two cameras and the LightningDataModule that serves them."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning as L
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF

from ..data.datasets import read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


MARKET_STYLE = ("market1501", "dukemtmcreid")
_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")


def read_train_samples(root: str | Path, dataset: str = "market1501") -> list[tuple[str, int, int]]:
    """(path, pid, camid) of a re-id training split, from Market-style names `PPPP_cC...` (Market-1501, Duke);
    camid 0-based, junk (pid -1) dropped. Looks for `bounding_box_train` under `root`, else takes `root` itself.

    The seam for the shared readers: this becomes `reid.data.formats.read_dataset(dataset, root).train`."""
    if dataset not in MARKET_STYLE:
        raise ValueError(f"dataset: this reader knows the Market-style sets {MARKET_STYLE}, got {dataset!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root: {root} is not a folder")
    folders = [root] if root.name == "bounding_box_train" else sorted(root.glob("**/bounding_box_train"))
    folder = folders[0] if folders else root
    samples = []
    for path in sorted(folder.iterdir()):
        match = _MARKET_NAME.match(path.name)
        if path.suffix.lower() in IMAGE_SUFFIXES and match and int(match[1]) != -1:
            samples.append((str(path), int(match[1]), int(match[2]) - 1))
    if not samples:
        raise FileNotFoundError(f"root: no Market-style training images (PPPP_cC*.jpg) found in {folder}")
    return samples


def as_triples(samples: Iterable[Any]) -> list[tuple[str, int, int]]:
    """Samples as (path, pid, camid): `Sample`-like objects, (path, pid, camid) or (path, camid) (pid -1)."""
    out = []
    for s in samples:
        if hasattr(s, "path"):
            out.append((str(s.path), int(s.pid), int(s.camid)))
        elif len(s) == 3:
            out.append((str(s[0]), int(s[1]), int(s[2])))
        elif len(s) == 2:
            out.append((str(s[0]), -1, int(s[1])))
        else:
            raise ValueError(f"samples: expected (path, pid, camid) or (path, camid), got {s!r}")
    return out


def load_image(path: str | Path, height: int, width: int) -> Tensor:
    """An image file as a [3, height, width] tensor in [-1, 1], read as re-id training reads it
    (`reid.data.read_image`: EXIF orientation applied, 16-bit scaled)."""
    image = read_image(path).resize((width, height), Image.BICUBIC)
    return TF.to_tensor(image) * 2 - 1


class _UnpairedCameras(Dataset):
    """Item i: camera a's i-th image with a random camera-b image (CycleGAN's unaligned pairs); length max(|a|, |b|).
    Training: resize to 286/256 of the size, random crop back, random flip (CycleGAN's resize_and_crop)."""

    def __init__(self, paths_a: list[str], paths_b: list[str], height: int, width: int, train: bool):
        self.paths_a, self.paths_b = paths_a, paths_b
        self.height, self.width, self.train = height, width, train

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b)) if self.train else min(len(self.paths_a), len(self.paths_b))

    def _load(self, path: str) -> Tensor:
        if not self.train:
            return load_image(path, self.height, self.width)
        h, w = round(self.height * 286 / 256), round(self.width * 286 / 256)
        image = load_image(path, h, w)
        top, left = random.randint(0, h - self.height), random.randint(0, w - self.width)
        image = image[:, top : top + self.height, left : left + self.width]
        return image.flip(-1) if random.random() < 0.5 else image

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        b = random.randrange(len(self.paths_b)) if self.train else i
        return {"a": self._load(self.paths_a[i % len(self.paths_a)]), "b": self._load(self.paths_b[b])}


def _evenly_spaced(paths: list[str], count: int | None) -> list[str]:
    """`count` of `paths` at evenly spaced positions (first and last included); all of them when count is None or
    not smaller."""
    if count is None or count >= len(paths):
        return paths
    if count == 1:
        return paths[:1]
    return [paths[round(i * (len(paths) - 1) / (count - 1))] for i in range(count)]


class CameraPairData(L.LightningDataModule):
    """Unpaired images of two cameras of a re-id training split, as batches {"a": [B,3,H,W], "b": ...} in [-1, 1].
    Samples come from `samples` when given ((path, pid, camid), (path, camid) or `Sample`s), else from `dataset`
    under `root`. Validation: the first `val_images` of each camera, unaugmented, for the style grids.
    `max_images_per_camera`: train on at most this many images of each camera, evenly spaced in the samples' order (a
    Market-style folder sorts by identity, so the subset spans the identities); None: all of them."""

    def __init__(
        self,
        root: str = "",
        dataset: str = "market1501",
        camera_a: int = 0,
        camera_b: int = 1,
        height: int = 256,
        width: int = 128,
        batch_size: int = 1,
        num_workers: int = 4,
        val_images: int = 4,
        samples: list[Any] | None = None,
        max_images_per_camera: int | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["samples"])
        if camera_a == camera_b:
            raise ValueError(f"camera_b: must differ from camera_a, both are {camera_a}")
        if height % 4 or width % 4:
            raise ValueError(f"height, width: must be multiples of 4, got {height}x{width}")
        if max_images_per_camera is not None and max_images_per_camera < 1:
            raise ValueError(f"max_images_per_camera: expected >= 1 or None, got {max_images_per_camera}")
        self.samples = None if samples is None else as_triples(samples)
        self.paths_a: list[str] = []
        self.paths_b: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        samples = self.samples if self.samples is not None else read_train_samples(h.root, h.dataset)
        self.paths_a = _evenly_spaced([p for p, _, c in samples if c == h.camera_a], h.max_images_per_camera)
        self.paths_b = _evenly_spaced([p for p, _, c in samples if c == h.camera_b], h.max_images_per_camera)
        for cam, paths in ((h.camera_a, self.paths_a), (h.camera_b, self.paths_b)):
            if not paths:
                cams = sorted({c for _, _, c in samples})
                raise ValueError(f"camera {cam}: no training images; the cameras present are {cams}")

    def _loader(self, train: bool) -> DataLoader:
        h = self.hparams
        paths_a, paths_b = (
            (self.paths_a, self.paths_b) if train else (self.paths_a[: h.val_images], self.paths_b[: h.val_images])
        )
        return DataLoader(
            _UnpairedCameras(paths_a, paths_b, h.height, h.width, train),
            batch_size=h.batch_size if train else h.val_images,
            shuffle=train,
            num_workers=h.num_workers,
            drop_last=False,
            persistent_workers=h.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(train=False)
