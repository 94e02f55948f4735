"""Stage 0 of CORE-ReID: camera-style transfer (CamStyle) with one CycleGAN per camera pair.

For every unordered pair of cameras (a, b) a `CameraStyleGAN` learns a→b and b→a generators from unpaired
images of the two cameras; `write_style_augmented` then renders every training image into the style of every
other camera, so a C-camera training set grows C-fold (Market: 12,936 → 77,616). Pairs are independent
models trained one after another by `run_stage0` (as CamStyle does); `python -m reid.gan --root DIR --out DIR`
runs the whole stage: train each pair (resumable), save the generators, render the augmented set.

By role: networks.py (generator, discriminator, generators on disk), module.py (the LightningModule, its
losses and schedule), data.py (samples, images, the DataModule), stage0.py (the driver and the augmented set),
cli.py (the command line; `python -m reid.gan` runs it).

Camera ids are the 0-based `camid`s the dataset readers give (Market `c1` → 0). Generated file names follow
CamStyle, `<original stem>_fake_<a+1>to<b+1>.jpg`, i.e. the dataset's own 1-based camera numbers.
"""

from __future__ import annotations

from .cli import main
from .data import IMAGE_SUFFIXES, MARKET_STYLE, CameraPairData, load_image, read_train_samples
from .module import CameraStyleGAN, ImagePool, cyclegan_lr_factor, lsgan_loss
from .networks import PatchDiscriminator, ResnetBlock, ResnetGenerator, init_weights, load_generator, save_generator
from .stage0 import camera_pairs, parse_style_name, run_stage0, style_name, write_style_augmented

__all__ = [
    "IMAGE_SUFFIXES",
    "MARKET_STYLE",
    "CameraPairData",
    "CameraStyleGAN",
    "ImagePool",
    "PatchDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "camera_pairs",
    "cyclegan_lr_factor",
    "init_weights",
    "load_generator",
    "load_image",
    "lsgan_loss",
    "main",
    "parse_style_name",
    "read_train_samples",
    "run_stage0",
    "save_generator",
    "style_name",
    "write_style_augmented",
]
