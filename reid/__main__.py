"""python -m reid fit|validate|test --config configs/reid/X.yaml [--trainer.devices N ...] (LightningCLI).

Each stage is a config naming its LightningModule and DataModule (subclass mode): stage 0 the camera-style
CycleGAN (one camera pair), stage 1 source pre-training, stage 2 teacher-student fine-tuning on the unlabelled
target. The CLI is vision's (the same subclass-mode LightningCLI).
"""

from __future__ import annotations

from vision.__main__ import cli_kwargs
from vision.__main__ import main as vision_main

from . import data, engine, gan  # noqa: F401  (the re-id classes the configs name, listed by --model.help)

DESCRIPTION = (
    "Train and evaluate CORE-ReID, domain-adaptive person re-identification, one stage per config:\n"
    "stage 0 a camera-style CycleGAN (one camera pair), stage 1 pre-training on the labelled source domain,\n"
    "stage 2 teacher-student fine-tuning on the unlabelled target. Export with `python -m reid.export`."
)


def main(args=None) -> None:
    vision_main(args, parser_kwargs=cli_kwargs("reid", "reid", DESCRIPTION, "reid"))


if __name__ == "__main__":
    main()
