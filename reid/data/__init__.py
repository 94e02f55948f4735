"""Re-id datasets: format readers, samplers, the DataModule and the synthetic generator."""

from .camstyle import match_renders, render_files
from .datamodule import ReIDData
from .datasets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CamStyleImages,
    ReIDImages,
    read_image,
    test_transform,
    train_transform,
)
from .formats import (
    DATASETS,
    ReIDSplits,
    Sample,
    read_cuhk03_np,
    read_dataset,
    read_folder,
    read_market1501,
    read_msmt17,
    relabel,
    split_held_out,
)
from .sampler import IdentitySampler

__all__ = [
    "DATASETS",
    "CamStyleImages",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IdentitySampler",
    "ReIDData",
    "ReIDImages",
    "ReIDSplits",
    "Sample",
    "match_renders",
    "read_cuhk03_np",
    "read_dataset",
    "read_folder",
    "read_image",
    "read_market1501",
    "read_msmt17",
    "relabel",
    "render_files",
    "split_held_out",
    "test_transform",
    "train_transform",
]
