"""python -m reid fit|validate|test --config configs/reid/X.yaml [--trainer.devices N ...] (LightningCLI).

Each stage is a config naming its LightningModule and DataModule (subclass mode): stage 0 the camera-style
CycleGAN, stage 1 source pre-training, stage 2 teacher-student fine-tuning on the unlabelled target.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI

import reid  # noqa: F401  (registers the re-id trunks with timm)


def main(args=None) -> None:
    LightningCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
