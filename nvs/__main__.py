"""python -m nvs fit|validate|test --config configs/nvs/X.yaml [--trainer.devices N ...] (LightningCLI)."""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from .data.datamodule import NViSTData
from .training import NViSTModule


def main(args=None) -> None:
    LightningCLI(NViSTModule, NViSTData, save_config_kwargs={"overwrite": True}, args=args)


if __name__ == "__main__":
    main()
