"""Load a local checkpoint (timm, MAE, Lightning, ours) into a model by name and shape, and say what happened.

Nothing is unpickled beyond tensors (safetensors, or torch.load with weights_only=True). Keys are matched
after stripping wrapper prefixes ("module.", "model.", "net.", "encoder."); absolute position embeddings
of another grid size are resampled; everything that does not match is reported and left as it was. A checkpoint
none of whose tensors fits the model (another model's) is an error; one that fills less than half of the model is
loaded with a warning.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

_WRAPPERS = ("state_dict", "model", "module", "model_ema")
_PREFIXES = ("module.", "_orig_mod.", "model.", "net.", "encoder.")


@dataclass
class LoadReport:
    copied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # checkpoint key -> why it was not used
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint did not provide

    def __str__(self) -> str:
        lines = [
            f"copied {len(self.copied)} tensors, skipped {len(self.skipped)}, "
            f"left {len(self.missing)} model tensors as initialised"
        ]
        lines += [f"  skipped {key}: {why}" for key, why in sorted(self.skipped.items())]
        lines += [f"  initialised {key}" for key in self.missing]
        return "\n".join(lines)


def read_weights_and_config(path: str | Path, known: set[str]) -> tuple[dict[str, Tensor], dict]:
    """A model saved as safetensors plus `<path>.json` (its constructor settings, keys within `known`):
    (tensors, settings), each checked, with errors naming the file. nvs and reid models are stored this way."""
    from common.files import read_json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    config_path = path.with_suffix(".json")
    try:
        settings = read_json(config_path, missing=f"{config_path} (the model's config) is missing")
    except (FileNotFoundError, ValueError) as error:
        raise type(error)(f"checkpoint: {error}") from error
    if not isinstance(settings, dict) or set(settings) - known:
        unknown = sorted(set(settings) - known) if isinstance(settings, dict) else settings
        raise ValueError(f"checkpoint: {config_path} holds unknown settings {unknown}")
    try:
        from safetensors.torch import load_file

        state = load_file(str(path))
    except Exception as error:
        raise ValueError(f"checkpoint: cannot read {path}: {type(error).__name__}: {error}") from error
    check_finite(state, path)
    return state, settings


def check_finite(state: dict[str, Tensor], path: str | Path) -> None:
    """A ValueError naming `path` and the first tensor of `state` that holds NaN or Inf (a diverged run's)."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            kind = "NaN" if bool(torch.isnan(tensor).any()) else "Inf"
            raise ValueError(f"checkpoint: {path}: tensor {name!r} holds {kind} (from a diverged training run?)")


def error_line(error: BaseException, limit: int = 200) -> str:
    """An exception's message, first line only, cut to `limit` characters (PyTorch's are pages long)."""
    lines = str(error).strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def load_exactly(model: nn.Module, state: dict[str, Tensor], path: str | Path, what: str) -> nn.Module:
    """`model` with `state` loaded strictly, or a one-line ValueError naming `path` and saying what does not fit
    (a few names of each kind); `what` names the model ("an NViST model") for the hint when most is missing."""
    problem = _mismatch(model.state_dict(), state, what)
    if problem is None:
        try:
            model.load_state_dict(state, strict=True)
            return model
        except RuntimeError as error:
            problem = error_line(error)
    raise ValueError(f"checkpoint: {path} does not fit its config: {problem}")


def _mismatch(own: dict[str, Tensor], state: dict[str, Tensor], what: str) -> str | None:
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    shapes = [key for key in own if key in state and tuple(state[key].shape) != tuple(own[key].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor{'s' * (len(missing) != 1)} missing ({_names(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_names(unexpected)})")
    if shapes:
        key, more = shapes[0], ", ..." * (len(shapes) > 1)
        parts.append(
            f"{len(shapes)} of the wrong shape ({_names([key])}: {list(state[key].shape)} in the file, "
            f"{list(own[key].shape)} in the model{more})"
        )
    if not parts:
        return None
    hint = f": not {what}?" if len(missing) > len(own) / 2 else ""
    return " and ".join(parts) + hint


def _names(keys: list[str], shown: int = 2) -> str:
    listed = [key if len(key) <= 60 else key[:57] + "..." for key in keys[:shown]]
    return ", ".join(listed + (["..."] if len(keys) > shown else []))


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a .safetensors, .pth/.pt/.bin or Lightning .ckpt file, unwrapped and de-prefixed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt, truncated, not a checkpoint, or holds non-tensor objects
        raise ValueError(f"checkpoint: cannot read {path}: {type(error).__name__}: {error}") from error
    while isinstance(state, dict) and not any(isinstance(v, Tensor) for v in state.values()):
        inner = next((state[k] for k in _WRAPPERS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not any(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"checkpoint: {path} holds no tensors (expected a state dict)")
    return {_strip(key): value for key, value in state.items() if isinstance(value, Tensor)}


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def _resample_pos_embed(model: nn.Module, value: Tensor, target: Tensor) -> Tensor | None:
    """A ViT position embedding of another grid size, resampled to the model's grid."""
    from timm.layers import resample_abs_pos_embed

    prefix = 0 if getattr(model, "no_embed_class", False) else getattr(model, "num_prefix_tokens", 0)
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if value.ndim != 3 or target.ndim != 3 or value.shape[-1] != target.shape[-1] or grid is None:
        return None
    return resample_abs_pos_embed(value, new_size=list(grid), num_prefix_tokens=prefix)


def load_checkpoint(model: nn.Module, path: str | Path, *, verbose: bool = True) -> LoadReport:
    """Copy every checkpoint tensor whose name and shape match the model's; return what was done.

    Raises ValueError when no tensor matches (a checkpoint of another model: loading it would silently leave the
    model as initialised), and warns (UserWarning) when fewer than half of the model's tensors were copied."""
    accepted, report = matching_tensors(model, read_state_dict(path), path)
    model.load_state_dict(accepted, strict=False)
    if verbose:
        log.info("loaded %s into %s:\n%s", path, type(model).__name__, report)
    return report


def matching_tensors(model: nn.Module, state: dict[str, Tensor], source: str | Path) -> tuple[dict, LoadReport]:
    """The tensors of `state` (from `source`) that fit `model` by name and shape, after the model's own
    adapt_state_dict hooks and position-embedding resampling, and the report of what fits. ValueError when
    nothing does; a UserWarning when they fill less than half of the model."""
    for name, module in model.named_modules():
        adapt = getattr(module, "adapt_state_dict", None)
        if adapt is not None:
            adapt(state, f"{name}." if name else "")
    own = model.state_dict()
    report, accepted = LoadReport(), {}
    for key, value in state.items():
        if key not in own:
            report.skipped[key] = "not in the model"
            continue
        if value.shape != own[key].shape and key.endswith("pos_embed"):
            resampled = _resample_pos_embed(model, value, own[key])
            if resampled is not None and resampled.shape == own[key].shape:
                value = resampled
        if value.shape != own[key].shape:
            report.skipped[key] = f"shape {tuple(value.shape)} != model's {tuple(own[key].shape)}"
            continue
        accepted[key] = value
        report.copied.append(key)
    name = type(model).__name__
    if own and not accepted:
        key, why = next(iter(report.skipped.items()))
        raise ValueError(
            f"checkpoint: none of the {len(state)} tensors in {source} matches one of {name}'s {len(own)} by name "
            f"and shape (e.g. {key}: {why}); is it a checkpoint of another model?"
        )
    report.missing = [key for key in own if key not in accepted]
    if len(accepted) < len(own) / 2:
        warnings.warn(
            f"checkpoint: {source} filled only {len(accepted)} of {name}'s {len(own)} tensors; the other "
            f"{len(report.missing)} stay as initialised ({len(report.skipped)} of the file's skipped)",
            UserWarning,
            stacklevel=3,
        )
    return accepted, report
