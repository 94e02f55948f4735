"""Stage 0 of CORE-ReID: camera-style transfer (CamStyle) with one CycleGAN per camera pair.

For every unordered pair of cameras (a, b) a `CameraStyleGAN` learns a→b and b→a generators from unpaired
images of the two cameras; `write_style_augmented` then renders every training image into the style of every
other camera, so a C-camera training set grows C-fold (Market: 12,936 → 77,616). Pairs are independent
models trained one after another by `run_stage0` (as CamStyle does); `python -m reid.gan --root DIR --out DIR`
runs the whole stage: train each pair (resumable), save the generators, render the augmented set.

Camera ids are the 0-based `camid`s the dataset readers give (Market `c1` → 0). Generated file names follow
CamStyle, `<original stem>_fake_<a+1>to<b+1>.jpg`, i.e. the dataset's own 1-based camera numbers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF

from common.cli import OneLineParser
from common.files import save_weights_and_config, write_atomic, write_text_atomic

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# -- networks --------------------------------------------------------------------------------------------------


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm: expected 'instance', 'batch' or 'none', got {norm!r}")


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """CycleGAN's initialisation: conv weights ~ N(0, 0.02), biases 0, batch-norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class ResnetBlock(nn.Module):
    """x + (reflect-pad, 3×3 conv, norm, ReLU, reflect-pad, 3×3 conv, norm)(x)."""

    def __init__(self, channels: int, norm: str = "instance"):
        super().__init__()
        bias = norm != "batch"  # a batch-norm's shift makes the conv bias redundant; instance norm has none
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            _norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            _norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: 7×7 stem, two stride-2 downsamplings, `n_blocks` residual blocks, two transposed-conv
    upsamplings, 7×7 head and tanh. Images in [-1, 1], height and width multiples of 4."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 64, n_blocks: int = 9, norm: str = "instance"):
        super().__init__()
        self.config = {"in_ch": in_ch, "out_ch": out_ch, "ngf": ngf, "n_blocks": n_blocks, "norm": norm}
        bias = norm != "batch"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_ch, ngf, 7, bias=bias),
            _norm_layer(norm, ngf),
            nn.ReLU(inplace=True),
        ]
        for i in range(2):
            c = ngf * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), _norm_layer(norm, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                _norm_layer(norm, c // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"images: height and width must be multiples of 4, got {tuple(x.shape[-2:])}")
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake scores, one per overlapping patch (70×70 at the defaults): `n_layers`
    stride-2 4×4 convs, one stride-1 4×4 conv, then a 4×4 conv to one channel; LeakyReLU 0.2, no norm first."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        c = ndf
        for n in range(1, n_layers + 1):
            c_out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(c, c_out, 4, stride=stride, padding=1, bias=bias),
                _norm_layer(norm, c_out),
                nn.LeakyReLU(0.2, True),
            ]
            c = c_out
        layers += [nn.Conv2d(c, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    @property
    def receptive_field(self) -> int:
        """Side in input pixels of the patch one output score sees (70 for n_layers=3)."""
        size = 1
        for m in reversed([m for m in self.model if isinstance(m, nn.Conv2d)]):
            size = (size - 1) * m.stride[0] + m.kernel_size[0]
        return size


class ImagePool:
    """History of generated images (Shrivastava et al.) that the discriminators also see: while it holds fewer
    than `size` images each query returns its input and keeps it; once full, each image is, with probability 1/2,
    swapped for a random stored one (which is returned), else returned as is. `size` 0 turns the pool off."""

    def __init__(self, size: int = 50, seed: int | None = None):
        self.size = size
        self.images: list[Tensor] = []
        self._rng = random.Random(seed)

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self._rng.random() < 0.5:
                i = self._rng.randrange(self.size)
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)


# -- losses ----------------------------------------------------------------------------------------------------


def lsgan_loss(prediction: Tensor, real: bool) -> Tensor:
    """Least-squares GAN loss: mean squared distance of the patch scores to 1 (real) or 0 (fake)."""
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if real else 0.0))


def cyclegan_lr_factor(epoch: int, constant_epochs: int, decay_epochs: int) -> float:
    """CycleGAN's schedule: the full rate for `constant_epochs`, then linearly towards 0 over `decay_epochs`."""
    return 1.0 - max(0, epoch + 1 - constant_epochs) / (decay_epochs + 1)


# -- the Lightning module --------------------------------------------------------------------------------------


class CameraStyleGAN(L.LightningModule):
    """One CycleGAN for cameras (a, b): `gen_ab` renders camera a's images in b's style, `gen_ba` the reverse;
    `disc_a` / `disc_b` tell real from generated images of camera a / b. LSGAN, cycle L1 (λ_cyc) and identity L1
    (λ_id·λ_cyc), Adam(lr, β1 0.5) for both generators and both discriminators, manual optimisation: a generator
    step then a discriminator step on fakes drawn through 50-image pools; the rate decays linearly per epoch."""

    def __init__(
        self,
        camera_a: int = 0,
        camera_b: int = 1,
        ngf: int = 64,
        ndf: int = 64,
        n_blocks: int = 9,
        n_layers_d: int = 3,
        norm: str = "instance",
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        lr: float = 2e-4,
        beta1: float = 0.5,
        pool_size: int = 50,
        constant_epochs: int = 30,
        decay_epochs: int = 20,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.gen_ab = ResnetGenerator(ngf=ngf, n_blocks=n_blocks, norm=norm)
        self.gen_ba = ResnetGenerator(ngf=ngf, n_blocks=n_blocks, norm=norm)
        self.disc_a = PatchDiscriminator(ndf=ndf, n_layers=n_layers_d, norm=norm)
        self.disc_b = PatchDiscriminator(ndf=ndf, n_layers=n_layers_d, norm=norm)
        self.pool_a = ImagePool(pool_size)
        self.pool_b = ImagePool(pool_size)

    def generator_losses(self, real_a: Tensor, real_b: Tensor) -> dict[str, Tensor]:
        """All generator terms, their weighted sum `loss` and the translations `fake_a`, `fake_b`."""
        h = self.hparams
        fake_b, fake_a = self.gen_ab(real_a), self.gen_ba(real_b)
        out = {
            "gan_ab": lsgan_loss(self.disc_b(fake_b), real=True),
            "gan_ba": lsgan_loss(self.disc_a(fake_a), real=True),
            "cycle_a": F.l1_loss(self.gen_ba(fake_b), real_a),
            "cycle_b": F.l1_loss(self.gen_ab(fake_a), real_b),
        }
        loss = out["gan_ab"] + out["gan_ba"] + h.lambda_cycle * (out["cycle_a"] + out["cycle_b"])
        if h.lambda_identity > 0:
            # A generator fed an image already in its target style should leave it alone (keeps colours stable).
            out["identity_a"] = F.l1_loss(self.gen_ba(real_a), real_a)
            out["identity_b"] = F.l1_loss(self.gen_ab(real_b), real_b)
            loss = loss + h.lambda_identity * h.lambda_cycle * (out["identity_a"] + out["identity_b"])
        out.update(loss=loss, fake_a=fake_a, fake_b=fake_b)
        return out

    def discriminator_loss(self, disc: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """½·(LSGAN(real → 1) + LSGAN(fake → 0)); the fake is detached so no gradient reaches a generator."""
        return 0.5 * (lsgan_loss(disc(real), real=True) + lsgan_loss(disc(fake.detach()), real=False))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_a, real_b = batch["a"], batch["b"]
        opt_g, opt_d = self.optimizers()

        self.toggle_optimizer(opt_g)  # discriminators frozen: the generator loss trains only the generators
        g = self.generator_losses(real_a, real_b)
        if not torch.isfinite(g["loss"]):
            raise FloatingPointError(f"generator loss is {g['loss'].item()} at step {self.global_step}")
        self.manual_backward(g["loss"])
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)
        self.untoggle_optimizer(opt_g)

        self.toggle_optimizer(opt_d)
        d_a = self.discriminator_loss(self.disc_a, real_a, self.pool_a.query(g["fake_a"]))
        d_b = self.discriminator_loss(self.disc_b, real_b, self.pool_b.query(g["fake_b"]))
        self.manual_backward(d_a + d_b)
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
        self.untoggle_optimizer(opt_d)

        n = real_a.shape[0]
        self.log("train/loss_g", g["loss"], prog_bar=True, batch_size=n)
        self.log_dict({f"train/{k}": v for k, v in g.items() if k not in ("loss", "fake_a", "fake_b")}, batch_size=n)
        self.log_dict({"train/disc_a": d_a, "train/disc_b": d_b}, prog_bar=True, batch_size=n)

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():  # manual optimisation: Lightning does not step them
            scheduler.step()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_a, real_b = batch["a"], batch["b"]
        fake_b, fake_a = self.gen_ab(real_a), self.gen_ba(real_b)
        rec_a, rec_b = self.gen_ba(fake_b), self.gen_ab(fake_a)
        n = real_a.shape[0]
        self.log("val/cycle_a", F.l1_loss(rec_a, real_a), batch_size=n, sync_dist=True)
        self.log("val/cycle_b", F.l1_loss(rec_b, real_b), batch_size=n, sync_dist=True)
        if batch_idx == 0 and self.trainer.is_global_zero:
            self._save_grid([real_a, fake_b, rec_a, real_b, fake_a, rec_b])

    def _save_grid(self, rows: list[Tensor]) -> None:
        """Rows real a, a→b, a→b→a, real b, b→a, b→a→b as a PNG under <log dir>/samples/ (written atomically)."""
        from torchvision.utils import make_grid, save_image

        grid = make_grid(torch.cat(rows).float().cpu() * 0.5 + 0.5, nrow=rows[0].shape[0], padding=1)
        logger = self.logger
        if logger is not None and hasattr(logger, "experiment") and hasattr(logger.experiment, "add_image"):
            logger.experiment.add_image("val/styles", grid, self.global_step)
        folder = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        a, b = self.hparams.camera_a, self.hparams.camera_b
        path = folder / f"c{a}_c{b}_epoch{self.current_epoch:03d}.png"
        write_atomic(path, lambda tmp: save_image(grid.clamp(0, 1), tmp))

    def configure_optimizers(self):
        h = self.hparams
        betas = (h.beta1, 0.999)
        opt_g = torch.optim.Adam(itertools.chain(self.gen_ab.parameters(), self.gen_ba.parameters()), h.lr, betas)
        opt_d = torch.optim.Adam(itertools.chain(self.disc_a.parameters(), self.disc_b.parameters()), h.lr, betas)

        def factor(epoch: int) -> float:
            return cyclegan_lr_factor(epoch, h.constant_epochs, h.decay_epochs)

        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], [{"scheduler": s, "interval": "epoch"} for s in schedulers]

    def generators(self) -> dict[tuple[int, int], ResnetGenerator]:
        """{(a, b): a→b generator, (b, a): b→a generator}, the form `write_style_augmented` takes."""
        a, b = self.hparams.camera_a, self.hparams.camera_b
        return {(a, b): self.gen_ab, (b, a): self.gen_ba}


# -- data ------------------------------------------------------------------------------------------------------

MARKET_STYLE = ("market1501", "dukemtmcreid")
_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")


def read_train_samples(root: str | Path, dataset: str = "market1501") -> list[tuple[str, int, int]]:
    """(path, pid, camid) of a re-id training split, from Market-style names `PPPP_cC...` (Market-1501, Duke);
    camid 0-based, junk (pid -1) dropped. Looks for `bounding_box_train` under `root`, else takes `root` itself.

    The seam for the shared readers: this becomes `reid.data.formats.read_dataset(dataset, root).train`."""
    if dataset not in MARKET_STYLE:
        raise ValueError(f"dataset: this reader knows the Market-style sets {MARKET_STYLE}, got {dataset!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root: {root} is not a folder")
    folders = [root] if root.name == "bounding_box_train" else sorted(root.glob("**/bounding_box_train"))
    folder = folders[0] if folders else root
    samples = []
    for path in sorted(folder.iterdir()):
        match = _MARKET_NAME.match(path.name)
        if path.suffix.lower() in IMAGE_SUFFIXES and match and int(match[1]) != -1:
            samples.append((str(path), int(match[1]), int(match[2]) - 1))
    if not samples:
        raise FileNotFoundError(f"root: no Market-style training images (PPPP_cC*.jpg) found in {folder}")
    return samples


def _as_triples(samples: Iterable[Any]) -> list[tuple[str, int, int]]:
    """Samples as (path, pid, camid): `Sample`-like objects, (path, pid, camid) or (path, camid) (pid -1)."""
    out = []
    for s in samples:
        if hasattr(s, "path"):
            out.append((str(s.path), int(s.pid), int(s.camid)))
        elif len(s) == 3:
            out.append((str(s[0]), int(s[1]), int(s[2])))
        elif len(s) == 2:
            out.append((str(s[0]), -1, int(s[1])))
        else:
            raise ValueError(f"samples: expected (path, pid, camid) or (path, camid), got {s!r}")
    return out


def load_image(path: str | Path, height: int, width: int) -> Tensor:
    """An image file as a [3, height, width] tensor in [-1, 1]."""
    with Image.open(path) as image:
        image = image.convert("RGB").resize((width, height), Image.BICUBIC)
    return TF.to_tensor(image) * 2 - 1


class _UnpairedCameras(Dataset):
    """Item i: camera a's i-th image with a random camera-b image (CycleGAN's unaligned pairs); length max(|a|, |b|).
    Training: resize to 286/256 of the size, random crop back, random flip (CycleGAN's resize_and_crop)."""

    def __init__(self, paths_a: list[str], paths_b: list[str], height: int, width: int, train: bool):
        self.paths_a, self.paths_b = paths_a, paths_b
        self.height, self.width, self.train = height, width, train

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b)) if self.train else min(len(self.paths_a), len(self.paths_b))

    def _load(self, path: str) -> Tensor:
        if not self.train:
            return load_image(path, self.height, self.width)
        h, w = round(self.height * 286 / 256), round(self.width * 286 / 256)
        image = load_image(path, h, w)
        top, left = random.randint(0, h - self.height), random.randint(0, w - self.width)
        image = image[:, top : top + self.height, left : left + self.width]
        return image.flip(-1) if random.random() < 0.5 else image

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        b = random.randrange(len(self.paths_b)) if self.train else i
        return {"a": self._load(self.paths_a[i % len(self.paths_a)]), "b": self._load(self.paths_b[b])}


class CameraPairData(L.LightningDataModule):
    """Unpaired images of two cameras of a re-id training split, as batches {"a": [B,3,H,W], "b": ...} in [-1, 1].
    Samples come from `samples` when given ((path, pid, camid), (path, camid) or `Sample`s), else from `dataset`
    under `root`. Validation: the first `val_images` of each camera, unaugmented, for the style grids."""

    def __init__(
        self,
        root: str = "",
        dataset: str = "market1501",
        camera_a: int = 0,
        camera_b: int = 1,
        height: int = 256,
        width: int = 128,
        batch_size: int = 1,
        num_workers: int = 4,
        val_images: int = 4,
        samples: list[Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["samples"])
        if camera_a == camera_b:
            raise ValueError(f"camera_b: must differ from camera_a, both are {camera_a}")
        if height % 4 or width % 4:
            raise ValueError(f"height, width: must be multiples of 4, got {height}x{width}")
        self.samples = None if samples is None else _as_triples(samples)
        self.paths_a: list[str] = []
        self.paths_b: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        samples = self.samples if self.samples is not None else read_train_samples(h.root, h.dataset)
        self.paths_a = [p for p, _, c in samples if c == h.camera_a]
        self.paths_b = [p for p, _, c in samples if c == h.camera_b]
        for cam, paths in ((h.camera_a, self.paths_a), (h.camera_b, self.paths_b)):
            if not paths:
                cams = sorted({c for _, _, c in samples})
                raise ValueError(f"camera {cam}: no training images; the cameras present are {cams}")

    def _loader(self, train: bool) -> DataLoader:
        h = self.hparams
        paths_a, paths_b = (
            (self.paths_a, self.paths_b) if train else (self.paths_a[: h.val_images], self.paths_b[: h.val_images])
        )
        return DataLoader(
            _UnpairedCameras(paths_a, paths_b, h.height, h.width, train),
            batch_size=h.batch_size if train else h.val_images,
            shuffle=train,
            num_workers=h.num_workers,
            drop_last=False,
            persistent_workers=h.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(train=False)


# -- generators on disk and the augmented training set ---------------------------------------------------------


def save_generator(generator: ResnetGenerator, path: str | Path) -> None:
    """`path` (.safetensors) plus its architecture beside it as `path` with .json, both written atomically."""
    save_weights_and_config(path, generator.state_dict(), generator.config)


def load_generator(path: str | Path) -> ResnetGenerator:
    """A generator written by `save_generator` (safetensors and JSON only: nothing is unpickled)."""
    from safetensors.torch import load_file

    path = Path(path)
    generator = ResnetGenerator(**json.loads(path.with_suffix(".json").read_text()))
    generator.load_state_dict(load_file(str(path)))
    return generator.eval()


def style_name(path: str | Path, camera_from: int, camera_to: int) -> str:
    """CamStyle's name for `path` rendered from camera a into camera b: `<stem>_fake_<a+1>to<b+1>.jpg`."""
    return f"{Path(path).stem}_fake_{camera_from + 1}to{camera_to + 1}.jpg"


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
    samples = _as_triples(samples)
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


# -- stage 0 driver and command line ---------------------------------------------------------------------------


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
) -> list[tuple[str, int, int]]:
    """Trains one `CameraStyleGAN` per camera pair in turn (`model`: its init arguments; `trainer`: extra
    `L.Trainer` arguments), saving `out/generators/<a>to<b>.safetensors`; a pair whose generators exist is
    skipped and an interrupted pair resumes from its last checkpoint. Then renders every training image of those
    cameras into every other camera's style under `out/bounding_box_train_camstyle` and lists them in
    `out/camstyle_train.txt` (`path pid camid` per line). Returns the new samples. `progress`: Lightning's bar
    while each pair trains and a bar on stderr while the images are rendered (both off when False)."""
    samples = _as_triples(samples)
    out = Path(out)
    cameras = sorted({c for _, _, c in samples}) if cameras is None else sorted(set(cameras))
    model = dict(model or {})
    epochs = model.get("constant_epochs", 30) + model.get("decay_epochs", 20)
    generators: dict[tuple[int, int], nn.Module] = {}
    for a, b in camera_pairs(cameras):
        paths = {
            (a, b): out / "generators" / f"{a}to{b}.safetensors",
            (b, a): out / "generators" / f"{b}to{a}.safetensors",
        }
        if not all(p.exists() for p in paths.values()):
            run_dir = out / "pairs" / f"c{a}_c{b}"
            data = CameraPairData(
                camera_a=a,
                camera_b=b,
                height=height,
                width=width,
                batch_size=batch_size,
                num_workers=num_workers,
                samples=samples,
            )
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
    new = write_style_augmented(
        generators,
        chosen,
        out / "bounding_box_train_camstyle",
        height,
        width,
        device,
        render_batch_size,
        progress=progress,
    )
    listing = out / "camstyle_train.txt"
    write_text_atomic(listing, "".join(f"{path} {pid} {camid}\n" for path, pid, camid in new))
    return new


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not match or int(match[1]) % 4 or int(match[2]) % 4 or int(match[1]) == 0 or int(match[2]) == 0:
        raise argparse.ArgumentTypeError(f"expected HxW with both multiples of 4 (e.g. 256x128), got {text!r}")
    return int(match[1]), int(match[2])


def main(argv: Sequence[str] | None = None) -> list[tuple[str, int, int]]:
    """python -m reid.gan --root DIR --out DIR [...]: stage 0 of CORE-ReID (see `run_stage0`)."""
    p = OneLineParser(prog="python -m reid.gan", description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, help="dataset root (the folder holding bounding_box_train)")
    p.add_argument("--out", required=True, help="output folder (generators, run logs, rendered images)")
    p.add_argument("--dataset", default="market1501")
    p.add_argument("--cameras", default="all", help="'all' or comma-separated 0-based camids (Market c1 is 0)")
    p.add_argument("--size", type=_size, default=(256, 128), help="HxW the GANs train and render at")
    p.add_argument("--epochs", type=int, default=50, help="epochs per camera pair (CamStyle: 50)")
    p.add_argument("--decay-epochs", type=int, default=None, help="last epochs of linear lr decay (default 40%%)")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--n-blocks", type=int, default=9)
    p.add_argument("--n-layers-d", type=int, default=3)
    p.add_argument("--lambda-cycle", type=float, default=10.0)
    p.add_argument("--lambda-identity", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--devices", default="auto")
    p.add_argument("--precision", default=None)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they show only on a terminal)")
    args = p.parse_args(argv)

    decay = round(0.4 * args.epochs) if args.decay_epochs is None else args.decay_epochs
    if args.epochs < 1 or not 0 <= decay <= args.epochs:
        p.error(f"--epochs/--decay-epochs: need epochs >= 1 and 0 <= decay <= epochs, got {args.epochs}/{decay}")
    try:
        samples = read_train_samples(args.root, args.dataset)
    except (FileNotFoundError, ValueError) as error:
        p.error(str(error))
    present = sorted({c for _, _, c in samples})
    if args.cameras == "all":
        cameras = present
    else:
        try:
            cameras = sorted({int(c) for c in args.cameras.split(",")})
        except ValueError:
            p.error(f"--cameras: expected 'all' or comma-separated integers, got {args.cameras!r}")
        missing = sorted(set(cameras) - set(present))
        if missing or len(cameras) < 2:
            p.error(f"--cameras: need at least two of the cameras present {present}, got {args.cameras!r}")
    model = {
        "ngf": args.ngf,
        "ndf": args.ndf,
        "n_blocks": args.n_blocks,
        "n_layers_d": args.n_layers_d,
        "lambda_cycle": args.lambda_cycle,
        "lambda_identity": args.lambda_identity,
        "lr": args.lr,
        "constant_epochs": args.epochs - decay,
        "decay_epochs": decay,
    }
    trainer = {"accelerator": args.accelerator, "devices": args.devices}
    if args.precision:
        trainer["precision"] = args.precision
    height, width = args.size
    progress = not args.quiet and sys.stderr.isatty()
    new = run_stage0(
        samples, args.out, cameras, height, width, model, args.batch_size, args.num_workers, trainer, progress=progress
    )
    print(f"wrote {len(new)} camera-style images to {Path(args.out) / 'bounding_box_train_camstyle'}")
    return new


if __name__ == "__main__":
    main(sys.argv[1:])
