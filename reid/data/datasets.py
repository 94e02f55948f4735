"""Person images as tensors: a Dataset over Sample lists and the re-id training / test transforms."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2 as T

from common.images import open_image

from .formats import Sample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_image(path: str | Path) -> Image.Image:
    """An 8-bit RGB PIL image from any file PIL reads, the one reader behind training, evaluation, `embed` and
    `reid.rank`: EXIF orientation applied (the image as a viewer shows it), then `to_rgb`. FileNotFoundError when
    there is no file; ValueError naming the file when it cannot be decoded."""
    return to_rgb(open_image(path))


def to_rgb(image: Image.Image) -> Image.Image:
    """A decoded image as 8-bit RGB: grayscale is repeated, alpha dropped (palette transparency too, without
    Pillow's warning), and wide pixels scaled to 0..255. Modes I;16, I;16B and I;16L are 16-bit by definition and
    are divided by 65535 (so a dark 16-bit image stays dark). Modes I (32-bit integers, which Pillow also uses for
    some 16-bit files) and F (float) do not say their range: they are guessed to be 16-bit (/ 65535) when the
    brightest pixel is above 255 and 8-bit (/ 255) otherwise; values outside the range are clipped."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            peak = 65535.0
        else:
            peak = 65535.0 if array.size and array.max() > 255 else 255.0
        image = Image.fromarray((array / peak * 255).clip(0, 255).round().astype(np.uint8))
    elif image.mode == "P":
        image = image.convert("RGBA")  # palette transparency, converted without Pillow's warning
    return image.convert("RGB")


def train_transform(
    height: int = 256, width: int = 128, style_augment: bool = False, pad: int | None = None
) -> T.Compose:
    """Resize, random horizontal flip, pad + random crop, ImageNet normalisation, random erasing (p 0.5,
    erased with the mean colour as Zhong et al.). `style_augment`: also random colour jitter (brightness,
    contrast, saturation, hue), grayscale and Gaussian blur, the photometric augmentations common in re-id, so
    that a model trained on one domain's cameras is less tied to their colour, sharpness and exposure.
    `pad`: the padding before the random crop, in pixels; None: 10 pixels per 256 of height (the usual pad 10 at
    256 x 128, so the crop jitter is the same fraction of the image at any size: 2 at 64 x 32)."""
    if pad is None:
        pad = max(1, round(10 * height / 256))
    if pad < 0:
        raise ValueError(f"pad: expected >= 0 pixels, got {pad}")
    style = []
    if style_augment:
        style = [
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.1),
            T.RandomApply([T.GaussianBlur(5, sigma=(0.1, 1.5))], p=0.5),
        ]
    return T.Compose(
        [
            T.ToImage(),
            T.Resize((height, width), antialias=True),
            T.RandomHorizontalFlip(),
            T.Pad(pad),
            T.RandomCrop((height, width)),
            *style,
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            T.RandomErasing(p=0.5, scale=(0.02, 0.4), ratio=(0.3, 3.33), value=0),
        ]
    )


def test_transform(height: int = 256, width: int = 128) -> T.Compose:
    """Resize and ImageNet normalisation."""
    return T.Compose(
        [
            T.ToImage(),
            T.Resize((height, width), antialias=True),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


test_transform.__test__ = False  # not a pytest test when a test module imports it


class ReIDImages(Dataset):
    """Item i: dict(image=transform(RGB image) (a float tensor with the transforms above), pid, camid,
    index=i, is_query=i < num_query).

    labels: per-sample ids used instead of the samples' pids (pseudo-labels). num_query: evaluation sets
    are query + gallery in one list, the first num_query items being the queries. read: how a path becomes an
    RGB image (default `read_image`; a shared `DecodedOnce(read_image)` decodes each file once).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable | None,
        labels: Sequence[int] | None = None,
        num_query: int = 0,
        read: Callable[[str], Image.Image] | None = None,
    ):
        if labels is not None and len(labels) != len(samples):
            raise ValueError(f"labels: expected one per sample ({len(samples)}), got {len(labels)}")
        if not 0 <= num_query <= len(samples):
            raise ValueError(f"num_query: expected 0..{len(samples)}, got {num_query}")
        self.samples = list(samples)
        self.transform = (
            transform if transform is not None else T.Compose([T.ToImage(), T.ToDtype(torch.float32, True)])
        )
        self.labels = None if labels is None else [int(label) for label in labels]
        self.num_query = num_query
        self.read = read

    def __len__(self) -> int:
        return len(self.samples)

    def _read_image(self, path: str) -> Image.Image:
        return read_image(path) if self.read is None else self.read(path)

    def image_path(self, index: int) -> str:
        """The file item `index` reads."""
        return self.samples[index].path

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        return {
            "image": self.transform(self._read_image(self.image_path(index))),
            "pid": sample.pid if self.labels is None else self.labels[index],
            "camid": sample.camid,
            "index": index,
            "is_query": index < self.num_query,
        }


class CamStyleImages(ReIDImages):
    """CamStyle training: item i is sample i's real image or, with probability `prob`, one of its camera-style
    renders (`renders[i]`, paths; one chosen uniformly), with sample i's pid (or label), camid and index, so a
    render inherits its original's (pseudo-)label. Samples without renders always give the real image. The draws
    use torch's random generator (seeded per DataLoader worker)."""

    def __init__(
        self,
        samples: Sequence[Sample],
        renders: Sequence[Sequence[str]],
        prob: float,
        transform: Callable | None,
        labels: Sequence[int] | None = None,
        read: Callable[[str], Image.Image] | None = None,
    ):
        super().__init__(samples, transform, labels, read=read)
        if len(renders) != len(samples):
            raise ValueError(f"renders: expected one list per sample ({len(samples)}), got {len(renders)}")
        if not 0 <= prob <= 1:
            raise ValueError(f"prob: expected a probability in [0, 1], got {prob}")
        self.renders = [list(r) for r in renders]
        self.prob = prob

    def image_path(self, index: int) -> str:
        renders = self.renders[index]
        if renders and self.prob > 0 and torch.rand(()).item() < self.prob:
            return renders[int(torch.randint(len(renders), ()))]
        return self.samples[index].path
