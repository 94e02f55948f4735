"""The training engine: CORE-ReID stages 1 and 2 as LightningModules (stage 0, the camera-style CycleGAN, is
reid.gan). stage1.py, stage2.py: the modules; evaluated.py: their shared validation and testing (a
ReIDEvaluator); optim.py: optimiser and schedule; checkpoints.py: reading networks back.

Stage 1, `SourcePretrainer`: label-smoothed CE on the global BN feature + batch-hard soft triplet on the
pre-BN feature over P x K source batches; the target batch is forwarded too (without gradient) so that
BatchNorm's running statistics see the target domain. Adam, linear warm-up, step decay.

Stage 2, `TargetFinetuner`: a student and its EMA teacher start from the stage-1 weights. Before every
epoch the teacher's features, fused with the student's ECAB attention, are clustered with K-means at three
levels (global, upper, lower); the global level's centroids re-initialise the classifier and its labels drive
the P x K sampler. Loss: CE(global) + triplet(global) + 0.5 (triplet(upper) + triplet(lower)), each level
against its own pseudo-labels. Validation uses the teacher on identities held out of the target's training
set; the test set is never used for model selection.
"""

from __future__ import annotations

from .checkpoints import read_network
from .stage1 import SourcePretrainer
from .stage2 import TargetFinetuner

__all__ = ["SourcePretrainer", "TargetFinetuner", "read_network"]
