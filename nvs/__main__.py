"""python -m nvs fit|validate|test --config configs/nvs/X.yaml [--trainer.devices N ...] (LightningCLI)."""

from __future__ import annotations

from vision.__main__ import DescribedCLI, cli_kwargs, run

from .data.datamodule import NViSTData
from .training import NViSTModule

DESCRIPTION = (
    "Train and evaluate NViST, the single-photo radiance-field model behind nvs-render, from a config file:\n"
    "MSE + LPIPS + distortion losses, PSNR/SSIM on held-out scenes beside two trivial baselines, validation renders\n"
    "saved as PNG. Export a checkpoint for nvs-render with `python -m nvs.weights CKPT --out model.safetensors`."
)


def main(args=None) -> None:
    parser_kwargs = cli_kwargs("nvs", "nvs", DESCRIPTION, "nvs")
    run(
        lambda: DescribedCLI(
            NViSTModule, NViSTData, save_config_kwargs={"overwrite": True}, parser_kwargs=parser_kwargs, args=args
        ),
        parser_kwargs["prog"],
    )


if __name__ == "__main__":
    main()
