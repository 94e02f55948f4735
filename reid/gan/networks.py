"""Stage 0's networks: the CycleGAN ResNet generator and PatchGAN discriminator (CycleGAN's architecture and
initialisation), and generators on disk (safetensors plus a JSON config beside it)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from common.files import save_weights_and_config
from vision.checkpoint import read_weights_and_config

GENERATOR_SETTINGS = ("in_ch", "out_ch", "ngf", "n_blocks", "norm")  # ResnetGenerator's config


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


def save_generator(generator: ResnetGenerator, path: str | Path) -> None:
    """`path` (.safetensors) plus its architecture beside it as `path` with .json, both written atomically."""
    save_weights_and_config(path, generator.state_dict(), generator.config)


def load_generator(path: str | Path) -> ResnetGenerator:
    """A generator written by `save_generator` (safetensors and JSON only: nothing is unpickled), read by the
    reader every model file shares."""
    state, settings = read_weights_and_config(path, set(GENERATOR_SETTINGS))
    generator = ResnetGenerator(**settings)
    generator.load_state_dict(state)
    return generator.eval()
