"""python -m reid fit|validate|test --config configs/reid/X.yaml [--trainer.devices N ...] (LightningCLI).

Each stage is a config naming its LightningModule and DataModule (subclass mode): stage 0 the camera-style
CycleGAN (one camera pair), stage 1 source pre-training, stage 2 teacher-student fine-tuning on the unlabelled
target. The CLI is vision's (the same subclass-mode LightningCLI).
"""

from __future__ import annotations

import reid  # noqa: F401  (the re-id classes the configs name)
from vision.__main__ import main

if __name__ == "__main__":
    main()
