"""Stage 0's LightningModule: one CycleGAN per camera pair, with its least-squares GAN loss, image history
pool and linear-decay schedule."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.files import write_atomic

from .networks import PatchDiscriminator, ResnetGenerator


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


def lsgan_loss(prediction: Tensor, real: bool) -> Tensor:
    """Least-squares GAN loss: mean squared distance of the patch scores to 1 (real) or 0 (fake)."""
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if real else 0.0))


def cyclegan_lr_factor(epoch: int, constant_epochs: int, decay_epochs: int) -> float:
    """CycleGAN's schedule: the full rate for `constant_epochs`, then linearly towards 0 over `decay_epochs`."""
    return 1.0 - max(0, epoch + 1 - constant_epochs) / (decay_epochs + 1)


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
