"""Re-identification for users: `load_model(path=None)` -> `ReIDModel`, whose `embed(images)` gives BMFN
features; weights on disk as safetensors plus a JSON config beside it (`<name>.json`), written atomically."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from common.files import save_weights_and_config
from vision.checkpoint import error_line, load_exactly, read_weights_and_config

from .core_reid import CoreReIDNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The small default model shipped inside the package, once trained; absent until then.
DEFAULT_WEIGHTS = Path(__file__).parents[1] / "assets" / "reid_default.safetensors"
TINY = dict(trunk="resnet_reid_tiny", num_classes=0, trunk_kwargs={}, input_size=[128, 64])
_CONFIG_KEYS = set(TINY)
# Trunk arguments that only matter when the model is first built (an ImageNet start); never saved.
_BUILD_ONLY = ("pretrained", "pretrained_cfg_overlay", "pretrained_cfg")

ImageInput = str | Path | Image.Image


class ReIDModel(nn.Module):
    """A CoreReIDNet plus its input handling: images in, L2-normalised BMFN embeddings out."""

    def __init__(self, net: CoreReIDNet):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.net.input_size

    @property
    def feature_dim(self) -> int:
        return self.net.feature_dim

    def resize(self, images: Tensor) -> Tensor:
        """[N, 3, H, W] of any size -> the model's input size (bilinear, antialiased when shrinking)."""
        if images.shape[-2:] == self.input_size:
            return images
        return F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)

    def preprocess(self, images: Tensor) -> Tensor:
        """[N, 3, H, W] RGB in 0..1, any size -> resized to the input size and ImageNet-normalised."""
        return (self.resize(images) - self.mean) / self.std

    @torch.no_grad()
    def embed(self, images: Tensor | ImageInput | Sequence[ImageInput], *, batch_size: int = 64) -> Tensor:
        """Embeddings [N, 3C] (float32, L2-normalised, on the model's device) of images given as paths, PIL
        images, or a [N, 3, H, W] (or [3, H, W]) float tensor of RGB in 0..1; each flip-averaged (BMFN). Paths
        are read as training reads them (`reid.data.read_image`: EXIF orientation applied, 16-bit scaled)."""
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        if isinstance(images, Tensor):
            batches = _check_tensor(images).split(batch_size)
        else:
            items = [images] if isinstance(images, (str, Path, Image.Image)) else list(images)
            # Decoded a batch at a time, so a large gallery never sits in memory at once.
            batches = (
                torch.cat([self.resize(_to_tensor(item)[None]) for item in items[i : i + batch_size]])
                for i in range(0, len(items), batch_size)
            )
        device = self.mean.device
        was_training = self.training
        self.eval()
        try:
            out = [self.net.embed(self.preprocess(b.to(device=device, dtype=torch.float32))) for b in batches]
        finally:
            self.train(was_training)
        if not out:
            return torch.zeros(0, self.feature_dim, device=device)
        return torch.cat(out)


def _to_tensor(image: ImageInput) -> Tensor:
    """Files are read as training reads them (`reid.data.datasets.read_image`: EXIF orientation, 16-bit, palette);
    a PIL image is taken as it stands (no EXIF rotation) and converted to RGB the same way."""
    from ..data.datasets import read_image, to_rgb  # the data package imports torchvision: load it on use

    if isinstance(image, (str, Path)):
        try:
            image = read_image(image)
        except FileNotFoundError as error:
            reason = "is a folder, not an image" if Path(image).is_dir() else "no such file"
            raise ValueError(f"images: cannot read {image}: {reason}") from error
        except (OSError, ValueError) as error:
            raise ValueError(f"images: cannot read {image}: {error.__cause__ or error}") from error
    if not isinstance(image, Image.Image):
        raise TypeError(f"images: expected paths, PIL images or a float tensor, got {type(image).__name__}")
    data = torch.frombuffer(bytearray(to_rgb(image).tobytes()), dtype=torch.uint8)
    return data.view(image.height, image.width, 3).permute(2, 0, 1).float().div(255)


def _check_tensor(images: Tensor) -> Tensor:
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(
            f"images: expected a float tensor [N, 3, H, W] in 0..1, got {images.dtype} {list(images.shape)}"
        )
    if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise ValueError(
            f"images: values must lie in 0..1 (got {float(images.min()):.3g}..{float(images.max()):.3g}); "
            "divide 8-bit images by 255 and do not normalise them"
        )
    return images


def _net(model: ReIDModel | CoreReIDNet) -> CoreReIDNet:
    if isinstance(model, ReIDModel):
        return model.net
    if isinstance(model, CoreReIDNet):
        return model
    raise TypeError(f"model: expected a ReIDModel or CoreReIDNet, got {type(model).__name__}")


def save_model(model: ReIDModel | CoreReIDNet, path: str | Path) -> Path:
    """Write the network's weights (safetensors) and `<path>.json` (its constructor settings), each atomically."""
    net = _net(model)
    config = dict(net.config)
    config["trunk_kwargs"] = {k: v for k, v in config["trunk_kwargs"].items() if k not in _BUILD_ONLY}
    return save_weights_and_config(path, net.state_dict(), config)


def read_model_files(path: str | Path) -> tuple[dict[str, Tensor], dict]:
    """The tensors of a saved model and its constructor settings (from `<path>.json`), checked but not built:
    weights holding NaN or Inf raise a one-line ValueError naming the file and the first such tensor."""
    return read_weights_and_config(path, _CONFIG_KEYS)


def load_model(path: str | Path | None = None, *, device: str | torch.device = "cpu") -> ReIDModel:
    """A trained model from `path` (safetensors + JSON config), in eval mode; without a path, the default model
    shipped in the package, or, if none ships yet, a randomly initialised tiny model (with a warning). A file
    whose config, tensors' names or shapes do not fit, or whose weights hold NaN or Inf, raises a one-line
    ValueError naming it."""
    if path is None:
        if not DEFAULT_WEIGHTS.exists():
            warnings.warn(
                "reid.load_model: no trained default model ships yet; returning a randomly initialised tiny "
                "CORE-ReID model (its embeddings are not meaningful)",
                stacklevel=2,
            )
            return ReIDModel(CoreReIDNet(**TINY)).eval().to(device)
        path = DEFAULT_WEIGHTS
    state, settings = read_model_files(path)
    try:
        net = CoreReIDNet(**settings)
    except Exception as error:
        reason = error_line(error) or type(error).__name__
        config = Path(path).with_suffix(".json")
        raise ValueError(f"checkpoint: {config} does not describe a model: {reason}") from error
    load_exactly(net, state, path, "a re-id model")
    return ReIDModel(net).eval().to(device)


__all__ = ["DEFAULT_WEIGHTS", "ReIDModel", "load_model", "read_model_files", "save_model"]
