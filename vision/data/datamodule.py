"""LightningDataModule for image classification: a torchvision ImageFolder tree or generated shapes."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision.transforms import v2 as T

from .synthetic import STYLES, SyntheticShapes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_image_folder(path: Path) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"root: expected a folder {path} with one sub-folder per class, found none")
    classes = [p for p in path.iterdir() if p.is_dir()]
    if not classes:
        raise ValueError(f"root: {path} has no class sub-folders (expected {path}/<class>/<image>)")


class ClassificationData(L.LightningDataModule):
    """Either `root` (an ImageFolder tree with `train/` and `val/`) or generated shapes (`root: null`).

    Images are resized to `image_size`; training adds random resized crops and flips; both are
    normalised with ImageNet statistics, which timm models expect. `synthetic_style` is the look of every
    generated split (vision.data.synthetic.STYLES); a model trained on one style can be tested on another with
    `python -m vision test ... --data.init_args.synthetic_style outlined`.
    """

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 224,
        batch_size: int = 64,
        num_workers: int = 0,
        synthetic_classes: int = 4,
        synthetic_train: int = 2000,
        synthetic_val: int = 400,
        seed: int = 0,
        augment: bool = True,
        synthetic_style: str = "classic",
    ):
        super().__init__()
        if synthetic_style not in STYLES:
            raise ValueError(f"synthetic_style: expected one of {STYLES}, got {synthetic_style!r}")
        self.save_hyperparameters()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    @property
    def num_classes(self) -> int:
        if self.hparams.root is None:
            return self.hparams.synthetic_classes
        return len([p for p in (Path(self.hparams.root) / "train").iterdir() if p.is_dir()])

    def _transforms(self, train: bool, tensor_input: bool):
        size = self.hparams.image_size
        steps = [] if tensor_input else [T.ToImage(), T.RGB()]
        if train and self.hparams.augment:
            steps += [T.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True), T.RandomHorizontalFlip()]
        else:
            steps += [T.Resize(size, antialias=True), T.CenterCrop(size)]
        steps += [T.ToDtype(torch.float32, scale=True), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        return T.Compose(steps)

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        if h.root is None:
            make = dict(image_size=h.image_size, num_classes=h.synthetic_classes, seed=h.seed, style=h.synthetic_style)
            self.train_set = SyntheticShapes(
                h.synthetic_train, split="train", transform=self._transforms(True, True), **make
            )
            self.val_set = SyntheticShapes(
                h.synthetic_val, split="val", transform=self._transforms(False, True), **make
            )
            return
        root = Path(h.root)
        for split in ("train", "val"):
            _check_image_folder(root / split)
        self.train_set = datasets.ImageFolder(root / "train", transform=self._transforms(True, False))
        self.val_set = datasets.ImageFolder(root / "val", transform=self._transforms(False, False))
        if self.train_set.classes != self.val_set.classes:
            raise ValueError(
                f"root: train and val class folders differ: {self.train_set.classes} vs {self.val_set.classes}"
            )

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        drop_last = shuffle and len(dataset) >= self.hparams.batch_size
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)
