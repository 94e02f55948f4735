"""NViST: one image -> a radiance field in one forward pass (MAE ViT encoder -> adaLN cross-attention decoder
-> TensoRF vector-matrix field -> volume renderer)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import timm
import torch
from torch import Tensor, nn

import vision  # noqa: F401  (registers the encoders with timm)

from .. import cameras
from .decoder import FieldDecoderTransformer
from .encoding import sincos_2d
from .field import Background, FieldDecoder, ProjectedBackground, sample_vm
from .volume_rendering import render_in_chunks, render_rays

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class NViSTConfig:
    """Architecture and rendering settings. Defaults are the paper's (docs/nvs.md, "The paper's model")."""

    image_height: int = 90
    image_width: int = 160
    patch_size: int = 5
    encoder_dim: int = 768
    encoder_depth: int = 12
    encoder_heads: int = 12
    encoder_attn: str = "softmax"
    decoder_dim: int = 768
    decoder_depth: int = 12
    decoder_heads: int = 12
    decoder_cross_attn: str = "softmax"
    decoder_self_attn: str = "softmax"
    field_resolution: int = 48  # planes R×R, lines R
    field_channels: int = 32  # 8 density + 24 colour
    density_channels: int = 8
    token_patch: int = 3  # each token writes a 3×3 plane patch (or 3 line cells)
    colour_hidden: int = 64
    density_scale: float = 1.0
    density_activation: str = "relu"  # the paper's; "softplus" cannot die (small, short runs)
    bound: float = 0.8  # the field lives in [-bound, bound]³
    samples: int = 48
    importance: int = 0  # extra samples from the first pass's weights (0: the paper's single pass)
    background: str = "mlp"  # "mlp": MLP on [scene code, PE(direction)]; "projected": ProjectedBackground
    default_focal_ratio: float = 1.0  # focal / image height when a photo comes without one
    default_distance: float = 2.0
    extras: dict = field(default_factory=dict)
    # What the weights were trained on, in words (metadata, not architecture: None when not recorded); the render
    # command names it when a photo looks far from it (nvs/ood.py)
    training_data: str | None = None

    def __post_init__(self):
        self._check_types()
        if self.field_resolution % self.token_patch:
            raise ValueError(
                f"field_resolution {self.field_resolution} must be a multiple of token_patch {self.token_patch}"
            )
        for name in ("image_height", "image_width"):
            if getattr(self, name) % self.patch_size:
                raise ValueError(f"{name} {getattr(self, name)} must be a multiple of patch_size {self.patch_size}")

    def _check_types(self) -> None:
        """Each field of its declared type (an int is not a bool, a float is any finite non-bool number), sizes at
        least 1: a ValueError naming the field, not a TypeError deep inside the model."""
        for item in fields(self):
            value, kind = getattr(self, item.name), _FIELD_TYPES[str(item.type)]
            if kind is None and value is None:
                continue
            if (kind in (int, float) and isinstance(value, bool)) or not isinstance(value, _ACCEPTED[kind]):
                raise ValueError(f"{item.name}: expected {_WORDS[kind]}, got {type(value).__name__} {value!r:.60}")
            if kind is float and not math.isfinite(value):
                raise ValueError(f"{item.name}: expected a finite number, got {value!r}")
            if item.name in _AT_LEAST_ONE and value < 1:
                raise ValueError(f"{item.name}: expected at least 1, got {value}")
            if kind is int and value < 0:
                raise ValueError(f"{item.name}: expected 0 or more, got {value}")


# NViSTConfig's annotations (strings, under `from __future__ import annotations`) -> the type each value must have
_FIELD_TYPES = {"int": int, "float": float, "str": str, "dict": dict, "str | None": None}
_ACCEPTED = {int: int, float: (int, float), str: str, dict: dict, None: str}
_WORDS = {int: "an integer", float: "a number", str: "a string", dict: "a mapping", None: "a string or null"}
_AT_LEAST_ONE = {
    "image_height", "image_width", "patch_size", "encoder_dim", "encoder_heads", "decoder_dim", "decoder_heads",
    "field_resolution", "field_channels", "density_channels", "token_patch", "colour_hidden", "samples",
}  # fmt: skip


@dataclass
class SceneCodes:
    planes: Tensor  # [B, 3, C, R, R]
    lines: Tensor  # [B, 3, C, R]
    scene_token: Tensor  # [B, D]


class NViST(nn.Module):
    def __init__(self, config: NViSTConfig | None = None, **overrides):
        super().__init__()
        config = config or NViSTConfig(**overrides)
        self.config = config
        c = config
        self.encoder = timm.create_model(
            "lavit_base_patch16_224",
            img_size=(c.image_height, c.image_width),
            patch_size=c.patch_size,
            embed_dim=c.encoder_dim,
            depth=c.encoder_depth,
            num_heads=c.encoder_heads,
            attn_kind=c.encoder_attn,
            num_classes=0,
        )
        self.encoder.norm = nn.Identity()  # NViST feeds the decoder un-normalised encoder tokens
        # MAE's encoder has a fixed 2-D sin-cos position embedding (the class token gets zeros). timm's learnable
        # one starts at std 0.02, 5% of the patch tokens' size (measured on the tiny model: 0.02 vs 0.38, and still
        # only 0.10 vs 0.42 after 2400 steps), so the decoder could barely tell where in the image a feature was
        rows, cols = c.image_height // c.patch_size, c.image_width // c.patch_size
        pos = torch.cat([torch.zeros(1, c.encoder_dim), sincos_2d(rows, cols, c.encoder_dim)])[None]
        self.encoder.pos_embed.data.copy_(pos)
        self.encoder.pos_embed.requires_grad_(False)
        grid = c.field_resolution // c.token_patch
        self.grid = grid
        positions = sincos_2d(3 * grid + 3, grid, c.decoder_dim)  # planes' rows, then one row per line
        self.decoder = FieldDecoderTransformer(
            c.decoder_dim,
            c.decoder_depth,
            c.decoder_heads,
            c.encoder_dim,
            positions,
            c.decoder_cross_attn,
            c.decoder_self_attn,
        )
        p, C = c.token_patch, c.field_channels
        self.plane_head = nn.Linear(c.decoder_dim, p * p * C)
        self.line_head = nn.Linear(c.decoder_dim, p * C)
        self.field_decoder = FieldDecoder(
            C,
            c.density_channels,
            c.colour_hidden,
            density_scale=c.density_scale,
            density_activation=c.density_activation,
        )
        if c.background not in ("mlp", "projected"):
            raise ValueError(f"background: expected 'mlp' or 'projected', got {c.background!r}")
        self.background = (Background if c.background == "mlp" else ProjectedBackground)(c.decoder_dim)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def encode(self, images: Tensor, condition: Tensor) -> SceneCodes:
        """images [B, 3, H, W] in 0..1 at the model's size; condition [B, 2] = (distance, focal / height)."""
        c = self.config
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, c.image_height, c.image_width):
            raise ValueError(f"images: expected [B, 3, {c.image_height}, {c.image_width}], got {tuple(images.shape)}")
        tokens = self.encoder.forward_features((images - self.mean) / self.std)
        out = self.decoder(tokens, condition)
        B, G, p, C = images.shape[0], self.grid, c.token_patch, c.field_channels
        plane_tokens, line_tokens = out[:, 1 : 1 + 3 * G * G], out[:, 1 + 3 * G * G :]
        planes = self.plane_head(plane_tokens).reshape(B, 3, G, G, p, p, C)
        planes = planes.permute(0, 1, 6, 2, 4, 3, 5).reshape(B, 3, C, G * p, G * p)
        lines = self.line_head(line_tokens).reshape(B, 3, G, p, C).permute(0, 1, 4, 2, 3).reshape(B, 3, C, G * p)
        return SceneCodes(planes, lines, out[:, 0])

    def render(self, codes: SceneCodes, origins: Tensor, dirs: Tensor, *, jitter: bool = False) -> dict[str, Tensor]:
        """Rays in the field's frame (object at the origin), [B, ..., 3] -> rendered rays (render_rays)."""
        c = self.config
        B = origins.shape[0]

        def field_fn(points: Tensor, point_dirs: Tensor):
            vm = sample_vm(codes.planes, codes.lines, points.reshape(B, -1, 3) / c.bound)
            density, rgb = self.field_decoder(vm, point_dirs.reshape(B, -1, 3))
            return density.reshape(points.shape[:-1]), rgb.reshape(points.shape)

        def background(ray_dirs: Tensor):
            return self.background(codes.scene_token, ray_dirs)

        return render_rays(
            field_fn,
            background,
            origins,
            dirs,
            bound=c.bound,
            samples=c.samples,
            importance=c.importance,
            jitter=jitter,
        )

    @staticmethod
    def to_field_frame(origins: Tensor, distance: Tensor) -> Tensor:
        """Input-camera frame (object near (0, 0, d)) -> field frame (object at the origin), per scene."""
        shift = torch.zeros_like(origins)
        shift[..., 2] = distance.reshape(-1, *([1] * (origins.ndim - 1)))[..., 0]
        return origins - shift

    def predict(self, image, *, focal: float | None = None, distance: float | None = None) -> RadianceField:
        """A photo (path, PIL image or [3, H, W] tensor in 0..1) -> its radiance field: prepare, then
        predict_prepared."""
        tensor, scale = self.prepare(image)
        return self.predict_prepared(tensor, scale=scale, focal=focal, distance=distance)

    def prepare(self, image) -> tuple[Tensor, float]:
        """A photo -> [3, H, W] at the model's input size (resized, centre-cropped) and the scale applied."""
        from ..images import prepare_image

        return prepare_image(image, self.config.image_height, self.config.image_width)

    def predict_prepared(
        self, image: Tensor, *, scale: float = 1.0, focal: float | None = None, distance: float | None = None
    ) -> RadianceField:
        """A prepared photo (`prepare`'s image and scale) -> its radiance field; focal in the original photo's
        pixels (default: the model's focal ratio), distance to the object (default: the model's)."""
        c = self.config
        focal_px = c.default_focal_ratio * c.image_height if focal is None else focal * scale
        distance = c.default_distance if distance is None else float(distance)
        device = self.mean.device
        condition = torch.tensor([[distance, focal_px / c.image_height]], device=device)
        with torch.no_grad():
            codes = self.encode(image[None].to(device), condition)
        return RadianceField(self, codes, distance, focal_px)

    def config_dict(self) -> dict:
        return asdict(self.config)


class RadianceField:
    """One photo's field. render() takes OpenCV camera-to-world poses relative to the input camera; the rays of
    each image go through render_rays `chunk` at a time (render_in_chunks)."""

    def __init__(self, model: NViST, codes: SceneCodes, distance: float, focal: float, chunk: int = 8192):
        self.model, self.codes, self.distance, self.focal, self.chunk = model, codes, distance, focal, chunk

    def render_rays(self, origins: Tensor, dirs: Tensor) -> dict[str, Tensor]:
        """Rays [P, 3] in the field's frame -> rgb [P, 3], distance along the ray and opacity (accumulated alpha)
        [P]."""
        out = self.model.render(self.codes, origins[None], dirs[None])
        return {"rgb": out["rgb"][0], "distance": out["distance"][0], "opacity": out["opacity"][0]}

    @torch.no_grad()
    def render(
        self, poses: Tensor, *, fx: float, fy: float, cx: float, cy: float, width: int, height: int
    ) -> dict[str, Tensor]:
        """poses [N, 4, 4] -> rgb [N, H, W, 3] in 0..1 and depth [N, H, W] (z in the camera frame), plus any
        other per-ray output of render_rays, as [N, H, W]."""
        if poses.ndim != 3 or poses.shape[1:] != (4, 4):
            raise ValueError(f"poses: expected [N, 4, 4] camera-to-world matrices, got {tuple(poses.shape)}")
        device = self.codes.planes.device
        poses = poses.to(device=device, dtype=torch.float32)
        origins, dirs, z = cameras.pixel_rays(poses, fx, fy, cx, cy, width, height)
        origins = self.model.to_field_frame(origins, torch.tensor([self.distance], device=device))
        out = render_in_chunks(self.render_rays, origins.reshape(-1, 3), dirs.reshape(-1, 3), self.chunk)
        rgb, distance = out.pop("rgb"), out.pop("distance")
        images = {"rgb": rgb.reshape(dirs.shape).clamp(0, 1), "depth": distance.reshape(z.shape) * z}
        return images | {name: value.reshape(z.shape) for name, value in out.items()}
