"""python -m vision fit|validate|test --config configs/vision/X.yaml [--trainer.devices N ...] (LightningCLI)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI

import vision  # noqa: F401  (registers the models with timm)


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
