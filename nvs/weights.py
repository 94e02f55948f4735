"""NViST weights on disk: safetensors plus a JSON config beside it (`<name>.json`), written atomically."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, fields
from pathlib import Path

import torch

from common.cli import OneLineParser, print_error
from common.files import save_weights_and_config
from vision.checkpoint import check_finite, error_line, load_exactly, read_weights_and_config

from .model.nvist import NViST, NViSTConfig

log = logging.getLogger(__name__)

# The small default model shipped inside the package, once trained (see docs/nvs.md); absent until then.
DEFAULT_WEIGHTS = Path(__file__).with_name("assets") / "nvist_default.safetensors"
# The tiny model (trains on two CPU cores in minutes), by part: input and encoder, decoder and field, rendering.
_TINY_ENCODER = dict(image_height=32, image_width=32, patch_size=4, encoder_dim=96, encoder_depth=2, encoder_heads=2)
_TINY_FIELD = dict(decoder_dim=96, decoder_depth=4, decoder_heads=2, field_resolution=24, token_patch=3)
_TINY_RENDERING = dict(
    samples=24, density_scale=5.0, density_activation="softplus", colour_hidden=32, default_distance=2.2
)
TINY = {**_TINY_ENCODER, **_TINY_FIELD, **_TINY_RENDERING}


def save_model(model: NViST, path: str | Path) -> Path:
    """Write model weights (safetensors) and `<path>.json` (its NViSTConfig), each via a temporary file."""
    return save_weights_and_config(path, model.state_dict(), asdict(model.config))


def load_model(path: str | Path | None = None, *, device: str | torch.device = "cpu") -> NViST:
    """A trained model from `path` (safetensors + JSON config); without a path, the default model shipped in
    the package, or, if none ships yet, a randomly initialised tiny model (with a warning saying so). A file
    whose config, tensors' names or shapes do not fit, or whose weights hold NaN or Inf, raises a one-line
    ValueError naming it."""
    if path is None:
        if not DEFAULT_WEIGHTS.exists():
            warnings.warn(
                "nvs.load_model: no trained default model ships yet; returning a randomly initialised tiny NViST",
                stacklevel=2,
            )
            return NViST(NViSTConfig(**TINY)).eval().to(device)
        path = DEFAULT_WEIGHTS
    path = Path(path)
    state, settings = read_weights_and_config(path, {f.name for f in fields(NViSTConfig)})
    model = _build(settings, path.with_suffix(".json"))
    return load_exactly(model, state, path, "an NViST model").eval().to(device)


def _build(settings: dict, source: str | Path) -> NViST:
    """NViST(NViSTConfig(**settings)), or a one-line ValueError naming `source` (where the settings came from)."""
    try:
        return NViST(NViSTConfig(**settings))
    except (TypeError, ValueError, AssertionError, RuntimeError) as error:
        reason = error_line(error) or type(error).__name__
        raise ValueError(f"checkpoint: {source} does not describe an NViST model: {reason}") from error


def _package_of(hyper: dict) -> str | None:
    """Which package's Lightning module wrote hyper-parameters `hyper`, when they say ("vision", "reid"), else None."""
    module = hyper.get("_class_path")
    if isinstance(module, str) and module.split(".")[0] in ("vision", "reid", "nvs"):
        return module.split(".")[0]
    if "trunk" in hyper or "source_checkpoint" in hyper:
        return "reid"
    if isinstance(hyper.get("model"), str) or "model_kwargs" in hyper:
        return "vision"
    return None


def model_from_checkpoint(path: str | Path) -> NViST:
    """The NViST network of a Lightning checkpoint written by `python -m nvs fit` (read with weights_only). A file
    that is not one (another package's checkpoint, a broken one) or whose weights hold NaN or Inf raises a
    one-line ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        hyper, weights = checkpoint["hyper_parameters"], checkpoint["state_dict"]
        if not isinstance(hyper, dict) or not isinstance(weights, dict):
            raise TypeError("its hyper_parameters or state_dict is not a mapping")
    except Exception as error:
        reason = f"{type(error).__name__}: {error_line(error)}"
        raise ValueError(f"checkpoint: {path} is not an NViST Lightning checkpoint ({reason})") from error
    package = _package_of(hyper)
    if package not in (None, "nvs"):
        written_by = hyper.get("_class_path") or f"a {package} training run"
        raise ValueError(
            f"checkpoint: {path} is not an NViST checkpoint: it looks like a {package} one (hyper-parameters of "
            f"{written_by})"
        )
    settings = hyper.get("model") or {}
    state = {k.removeprefix("net."): v for k, v in weights.items() if isinstance(k, str) and k.startswith("net.")}
    if not isinstance(settings, dict):
        raise ValueError(
            f"checkpoint: {path} is not an NViST checkpoint: its hyper-parameter 'model' is "
            f"{type(settings).__name__} {settings!r:.40}, not NViST settings"
        )
    if not state:
        raise ValueError(f"checkpoint: {path} is not an NViST checkpoint: it holds no 'net.' tensors")
    check_finite(state, path)
    return load_exactly(_build(settings, path), state, path, "an NViST model").eval()


def main(argv: list[str] | None = None) -> int:
    """python -m nvs.weights CHECKPOINT.ckpt --out model.safetensors: a training checkpoint -> a shippable model."""

    parser = OneLineParser(name_errors=False, prog="python -m nvs.weights", description=main.__doc__.split(": ", 1)[1])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, required=True, help=".safetensors to write (+ .json beside it)")
    args = parser.parse_args(argv)
    try:
        if args.out.suffix != ".safetensors":
            raise ValueError(f"--out {args.out}: expected a .safetensors path")
        save_model(model_from_checkpoint(args.checkpoint), args.out)
    except (ValueError, OSError) as error:
        return print_error(str(error))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
