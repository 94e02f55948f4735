"""Stage 0 end to end: train a CycleGAN per camera pair (resumable), save its generators, and render every
training image in every other camera's style (the augmented training set)."""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from PIL import Image
from torch import nn

from common.files import write_atomic, write_text_atomic

from .data import CameraPairData, as_triples, load_image
from .module import CameraStyleGAN
from .networks import load_generator, save_generator


def style_name(path: str | Path, camera_from: int, camera_to: int) -> str:
    """CamStyle's name for `path` rendered from camera a into camera b: `<stem>_fake_<a+1>to<b+1>.jpg`."""
    return f"{Path(path).stem}_fake_{camera_from + 1}to{camera_to + 1}.jpg"


_STYLE_STEM = re.compile(r"^(.+)_fake_([1-9]\d*)to([1-9]\d*)$")


def parse_style_name(path: str | Path) -> tuple[str, int, int]:
    """The inverse of `style_name`: (the original's stem, camera_from, camera_to), cameras 0-based, from a render's
    path or file name (any image suffix). A name that `style_name` cannot have written (no `_fake_<a>to<b>` at
    the end of the stem, a camera 0, or a = b) is a ValueError naming the file."""
    match = _STYLE_STEM.match(Path(path).stem)
    if match is None or match[2] == match[3]:
        raise ValueError(
            f"{path}: not a camera-style render name; expected <original stem>_fake_<a>to<b>.jpg with 1-based "
            "cameras a != b (as python -m reid.gan writes them)"
        )
    return match[1], int(match[2]) - 1, int(match[3]) - 1


@torch.no_grad()
def write_style_augmented(
    generators: dict[tuple[int, int], nn.Module],
    samples: Sequence[Any],
    out_dir: str | Path,
    height: int = 256,
    width: int = 128,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    overwrite: bool = False,
    progress: bool = False,
) -> list[tuple[str, int, int]]:
    """Renders every sample of camera a through every generator (a, b) into `out_dir` as JPEGs named
    `style_name(...)` at height×width, and returns their (path, pid, camid). The camid stays the camera that
    really saw the person: the image is an augmentation of that view (as in CamStyle, whose names keep the
    original `cC`), so camera-aware evaluation and sampling never mistake it for a real view from camera b.
    Files already there are kept unless `overwrite` (a crashed run resumes); each is written to a temp name and
    renamed, so a partial file never looks whole. `progress`: a bar on stderr, one step per image."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = as_triples(samples)
    jobs = [(s, a, b) for (a, b) in sorted(generators) for s in samples if s[2] == a]
    new: list[tuple[str, int, int]] = []
    with tqdm(total=len(jobs), desc="camera styles", unit="image", file=sys.stderr, disable=not progress) as bar:
        for (a, b), group in itertools.groupby(jobs, key=lambda job: job[1:]):
            generator = generators[(a, b)].to(device).eval()
            group = list(group)
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                targets = [out_dir / style_name(path, a, b) for (path, _, _), _, _ in chunk]
                todo = [i for i, t in enumerate(targets) if overwrite or not t.exists()]
                if todo:
                    images = torch.stack([load_image(chunk[i][0][0], height, width) for i in todo]).to(device)
                    rendered = ((generator(images) + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1)
                    for i, pixels in zip(todo, rendered.cpu().numpy(), strict=True):
                        write_atomic(targets[i], lambda tmp, p=pixels: Image.fromarray(p).save(tmp, quality=95))
                new += [(str(t), pid, camid) for t, ((_, pid, camid), _, _) in zip(targets, chunk, strict=True)]
                bar.update(len(chunk))
    return new


def camera_pairs(camids: Iterable[int]) -> list[tuple[int, int]]:
    """Every unordered pair (a < b) of the given cameras: C·(C-1)/2 CycleGANs."""
    return list(itertools.combinations(sorted(set(camids)), 2))


def run_stage0(
    samples: Sequence[Any],
    out: str | Path,
    cameras: Sequence[int] | None = None,
    height: int = 256,
    width: int = 128,
    model: dict[str, Any] | None = None,
    batch_size: int = 1,
    num_workers: int = 4,
    trainer: dict[str, Any] | None = None,
    render_batch_size: int = 16,
    progress: bool = False,
    max_images_per_camera: int | None = None,
) -> list[tuple[str, int, int]]:
    """Trains one `CameraStyleGAN` per camera pair in turn (`model`: its init arguments; `trainer`: extra
    `L.Trainer` arguments), saving `out/generators/<a>to<b>.safetensors`; a pair whose generators exist is
    skipped and an interrupted pair resumes from its last checkpoint. Then renders every training image of those
    cameras into every other camera's style under `out/bounding_box_train_camstyle` and lists them in
    `out/camstyle_train.txt` (`path pid camid` per line). Returns the new samples. `progress`: Lightning's bar
    while each pair trains and a bar on stderr while the images are rendered (both off when False).
    `max_images_per_camera`: each pair trains on at most this many images per camera (`CameraPairData`); every
    image is rendered all the same."""
    samples = as_triples(samples)
    out = Path(out)
    cameras = sorted({c for _, _, c in samples}) if cameras is None else sorted(set(cameras))
    model = dict(model or {})
    epochs = model.get("constant_epochs", 30) + model.get("decay_epochs", 20)
    loading = dict(
        height=height,
        width=width,
        batch_size=batch_size,
        num_workers=num_workers,
        max_images_per_camera=max_images_per_camera,
    )
    generators: dict[tuple[int, int], nn.Module] = {}
    for a, b in camera_pairs(cameras):
        paths = {
            (a, b): out / "generators" / f"{a}to{b}.safetensors",
            (b, a): out / "generators" / f"{b}to{a}.safetensors",
        }
        if not all(p.exists() for p in paths.values()):
            run_dir = out / "pairs" / f"c{a}_c{b}"
            data = CameraPairData(camera_a=a, camera_b=b, samples=samples, **loading)
            module = CameraStyleGAN(camera_a=a, camera_b=b, **model)
            checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True)
            options = {
                "max_epochs": epochs,
                "default_root_dir": str(run_dir),
                "callbacks": [checkpoint],
                "enable_progress_bar": progress,
            }
            options.update(trainer or {})
            last = run_dir / "checkpoints" / "last.ckpt"
            L.Trainer(**options).fit(module, data, ckpt_path=str(last) if last.exists() else None)
            for key, generator in module.generators().items():
                save_generator(generator, paths[key])
        generators.update({key: load_generator(path) for key, path in paths.items()})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    chosen = [s for s in samples if s[2] in cameras]
    folder = out / "bounding_box_train_camstyle"
    new = write_style_augmented(generators, chosen, folder, height, width, device, render_batch_size, progress=progress)
    listing = out / "camstyle_train.txt"
    write_text_atomic(listing, "".join(f"{path} {pid} {camid}\n" for path, pid, camid in new))
    return new
