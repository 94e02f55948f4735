"""Reading a re-id network back from what training wrote: a saved inference model or a Lightning checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vision.checkpoint import check_finite


def read_network(path: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Network weights and config from a saved inference model (.safetensors) or a Lightning checkpoint: a
    stage-1 one (its network) or a stage-2 one (its EMA teacher, CORE-ReID's inference model). Weights holding NaN
    or Inf (a diverged run's) raise a ValueError naming the file and the tensor."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint: no such file {file}")
    if file.suffix == ".safetensors":
        from ..models.inference import read_model_files

        return read_model_files(file)
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
        h, state = checkpoint["hyper_parameters"], checkpoint["state_dict"]
        prefix = "net." if any(k.startswith("net.") for k in state) else "teacher."
        weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        config = {"trunk": h["trunk"], "trunk_kwargs": h.get("trunk_kwargs"), "input_size": h["input_size"]}
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        raise ValueError(f"checkpoint {file}: not a stage-1 or stage-2 checkpoint ({reason})") from error
    if not weights:
        raise ValueError(f"checkpoint {file}: holds neither a stage-1 network nor a stage-2 teacher")
    check_finite(weights, file)
    return weights, config
