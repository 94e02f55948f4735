"""LightningDataModule for NViST: scenes from a folder (nerfstudio, MVImgNet or CO3D layout), split into
training and held-out scenes; synthetic scenes are generated into the folder first when asked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from common.images import DecodedOnce

from .nerfstudio import CENTERS
from .scenes import Scene, SceneDataset, read_view_image


def _collate(items: list[dict]) -> dict:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


class NViSTData(L.LightningDataModule):
    """root: the dataset folder. format: "nerfstudio" (transforms.json folders), "mvimgnet" (COLMAP per scene)
    or "co3d" (CO3Dv2 annotations). Every `holdout_every`-th scene is held out (NViST: every 100th).

    generate: if set, e.g. {scenes: 200, views: 8, size: 32, seed: 0, style: varied, workers: 16}, synthetic
    scenes are rendered into `root` once (prepare_data; style "classic" unless given, `workers` processes, default
    1); a folder rendered with other settings is an error, never silently reused. Held-out scenes that have masks
    and depth maps (the synthetic ones do) also get the object metrics.

    scale, center: for "nerfstudio" only, world units -> the field's, and where the object is ("focus": the point
    nearest to every optical axis; "poses": the mean camera position; "none": the world origin), as
    nerfstudio.read_transforms takes them; MVImgNet and CO3D scenes are centred and scaled by their own rules.

    cache_images: decode each image file once and keep it in memory (`common.images.DecodedOnce`): the same
    batches, without decoding the same files at every step; for small datasets (880 synthetic scenes of 8 views at
    32² take 86 MB, once per DataLoader worker), not MVImgNet or CO3D.
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        format: str = "nerfstudio",
        input_height: int = 90,
        input_width: int = 160,
        target_height: int = 90,
        target_width: int = 160,
        targets: int = 4,
        holdout_every: int = 100,
        batch_size: int = 8,
        num_workers: int = 0,
        scale: float = 1.0,
        generate: dict | None = None,
        cache_images: bool = False,
        center: str = "focus",
    ):
        super().__init__()
        if format not in ("nerfstudio", "mvimgnet", "co3d"):
            raise ValueError(f"format: expected 'nerfstudio', 'mvimgnet' or 'co3d', got {format!r}")
        if center not in CENTERS:
            raise ValueError(f"center: expected one of {CENTERS}, got {center!r}")
        self.save_hyperparameters()
        self.train_set: SceneDataset | None = None
        self.val_set: SceneDataset | None = None

    def prepare_data(self) -> None:
        spec = self.hparams.generate
        root = Path(self.hparams.root)
        if spec is None:
            return
        spec = {"seed": 0, **spec}
        workers = spec.pop("workers", 1)  # how many processes render does not change what they render
        if spec.get("style") == "classic":
            del spec["style"]  # the default, and what folders written before there were styles hold
        marker = root / ".complete"  # written last, holding the settings the scenes were rendered with
        if marker.exists():
            written = marker.read_text().strip() or "unrecorded settings"
            if written == "unrecorded settings" or json.loads(written) != spec:
                raise ValueError(
                    f"root: {root} holds synthetic scenes rendered with {written}, not the requested {spec}; "
                    "delete the folder or choose another data.root"
                )
            return
        from tqdm import tqdm

        from .synthetic import write_scenes

        done = write_scenes(
            root, spec["scenes"], spec["views"], spec["size"], spec["seed"], spec.get("style", "classic"), workers
        )
        shown = sys.stderr.isatty()  # a bar on a terminal only, like Lightning's own
        for _ in tqdm(
            done, total=spec["scenes"], desc="rendering scenes", unit="scene", file=sys.stderr, disable=not shown
        ):
            pass
        marker.write_text(json.dumps(spec, sort_keys=True))

    def _scenes(self) -> list[Scene]:
        h = self.hparams
        if h.format == "nerfstudio":
            from .nerfstudio import find_scenes

            return find_scenes(h.root, h.scale, h.center)
        if h.format == "mvimgnet":
            from .mvimgnet import find_scenes

            return find_scenes(h.root)
        from .co3d import find_scenes

        return find_scenes(h.root)

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        scenes = self._scenes()
        held_out = [s for i, s in enumerate(scenes) if i % h.holdout_every == h.holdout_every - 1]
        training = [s for i, s in enumerate(scenes) if i % h.holdout_every != h.holdout_every - 1]
        if not held_out or (not training and stage in ("fit", None)):  # testing alone may hold out every scene
            raise ValueError(f"root: {len(scenes)} scenes cannot be split with holdout_every={h.holdout_every}")
        shared = dict(input_size=(h.input_height, h.input_width), target_size=(h.target_height, h.target_width))
        shared["read"] = DecodedOnce(read_view_image) if h.cache_images else None
        self.train_set = SceneDataset(training, targets=h.targets, input_view="random", **shared) if training else None
        self.val_set = SceneDataset(held_out, targets=1000, input_view=0, include_input=False, geometry=True, **shared)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.hparams.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.hparams.num_workers,
            collate_fn=_collate,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1, num_workers=self.hparams.num_workers, collate_fn=_collate)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
