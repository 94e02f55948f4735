"""A radiance field multiplied out onto its grid for fast inference (the render CLI's renderer).

The TensoRF field samples three planes and three lines per point; the product of a bilinear plane lookup and
a linear line lookup is the trilinear lookup of the products at the grid nodes, and the colour MLP's first
layer is linear, so both can be precomputed once per photo on the R³ nodes. A point then costs one
trilinear lookup of (raw density, first-layer features) instead of six lookups and a wider matmul. The result
equals RadianceField.render up to float rounding (tests/nvs/test_render_cli.py checks it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import cameras
from .model.encoding import frequency_encoding
from .model.field import sample_vm
from .model.nvist import RadianceField
from .model.render import ray_box, render_rays


class BakedField:
    """One photo's field on its grid nodes: density() and colour() at points in the field's frame (object
    at the origin), render() with RadianceField.render's arguments and outputs."""

    def __init__(self, field: RadianceField, chunk: int = 16384):
        self.field, self.chunk = field, chunk
        self.model, self.config = field.model, field.model.config
        self.decoder = self.model.field_decoder
        self.volume = self._bake()  # [1, 1 + hidden, R, R, R] (z, y, x): raw density, then features
        first = self.decoder.colour[0]
        hidden = self.decoder.features[0].out_features
        self.w_features, self.w_dirs, self.b_colour = first.weight[:, :hidden], first.weight[:, hidden:], first.bias

    @torch.inference_mode()
    def _bake(self) -> Tensor:
        res, codes, dc = self.config.field_resolution, self.field.codes, self.decoder.density_channels
        axis = torch.linspace(-1, 1, res, device=codes.planes.device)
        z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
        nodes = torch.stack([x, y, z], dim=-1).reshape(1, -1, 3)
        vm = sample_vm(codes.planes, codes.lines, nodes)[0]  # [R³, 3, C], exact at the nodes
        raw = vm[..., :dc].sum(dim=(-1, -2))
        features = self.decoder.features[0](vm[..., dc:].flatten(-2))  # before the GELU
        return torch.cat([raw[:, None], features], dim=1).T.reshape(1, -1, res, res, res).contiguous()

    def _lookup(self, points: Tensor, channels: slice) -> Tensor:
        """Trilinear lookup of volume channels at points [..., 3] (field frame) -> [..., channels]."""
        flat = (points / self.config.bound).reshape(-1, 3)
        # PyTorch's CPU grid_sample 3-D runs one thread per batch item: split the points into one item per thread
        parts = torch.get_num_threads() if flat.device.type == "cpu" and len(flat) >= 65536 else 1
        pad = -len(flat) % parts
        grid = F.pad(flat, (0, 0, 0, pad)).reshape(parts, -1, 1, 1, 3)
        volume = self.volume[:, channels].expand(parts, -1, -1, -1, -1)
        out = F.grid_sample(volume, grid, align_corners=True, padding_mode="zeros")  # [parts, C, P/parts, 1, 1]
        out = out[..., 0, 0].permute(0, 2, 1).reshape(-1, out.shape[1])[: len(flat)]
        return out.reshape(*points.shape[:-1], -1)

    def _activate(self, raw: Tensor) -> Tensor:
        return self.decoder.activate(raw)

    def density(self, points: Tensor) -> Tensor:
        """points [..., 3] in the field's frame -> density [...]."""
        return self._activate(self._lookup(points, slice(0, 1))[..., 0])

    def colour(self, points: Tensor, dirs: Tensor) -> Tensor:
        """points [..., 3] and unit viewing directions [..., 3] -> rgb [..., 3] in 0..1."""
        features = F.gelu(self._lookup(points, slice(1, None)))
        return self._colour(features, self._dir_term(dirs))

    def _dir_term(self, dirs: Tensor) -> Tensor:
        return F.linear(frequency_encoding(dirs, self.decoder.dir_frequencies), self.w_dirs, self.b_colour)

    def _colour(self, features: Tensor, dir_term: Tensor) -> Tensor:
        hidden = F.gelu(features @ self.w_features.T + dir_term)
        return torch.sigmoid(self.decoder.colour[2](hidden))

    def _field_fn(self, points: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """render_rays' field: points and dirs [..., S, 3]; the direction term is computed once per ray."""
        values = self._lookup(points, slice(None))
        features = F.gelu(values[..., 1:])
        rgb = self._colour(features, self._dir_term(dirs[..., 0, :])[..., None, :])
        return self._activate(values[..., 0]), rgb

    def _render_rays(self, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rays [P, 3] in the field's frame -> rgb [P, 3], distance [P], hit [P]; rays that miss the box only
        see the background (as render_rays would give them) and skip the samples."""
        c = self.config
        _, far, hit = ray_box(origins, dirs, c.bound)
        rgb = self.model.background(self.field.codes.scene_token, dirs[None])[0]
        distance = far.clone()
        if hit.any():
            out = render_rays(
                self._field_fn,
                lambda d: self.model.background(self.field.codes.scene_token, d[None])[0],
                origins[hit],
                dirs[hit],
                bound=c.bound,
                samples=c.samples,
                importance=c.importance,
            )
            rgb[hit], distance[hit] = out["rgb"], out["distance"]
        return rgb, distance, hit

    @torch.inference_mode()
    def render(
        self, poses: Tensor, *, fx: float, fy: float, cx: float, cy: float, width: int, height: int
    ) -> dict[str, Tensor]:
        """OpenCV camera-to-world poses [N, 4, 4] relative to the input camera -> rgb [N, H, W, 3], depth
        [N, H, W] (as RadianceField.render) and hit [N, H, W] (whether the ray crosses the field's box)."""
        device = self.volume.device
        poses = poses.to(device=device, dtype=torch.float32)
        origins, dirs, z = cameras.pixel_rays(poses, fx, fy, cx, cy, width, height)
        origins = self.model.to_field_frame(origins, torch.tensor([self.field.distance], device=device))
        flat_o, flat_d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
        chunks = [
            self._render_rays(flat_o[start : start + self.chunk], flat_d[start : start + self.chunk])
            for start in range(0, flat_o.shape[0], self.chunk)
        ]
        rgb, distance, hit = (torch.cat(parts) for parts in zip(*chunks, strict=True))
        depth = distance.reshape(dirs.shape[:-1]) * z
        return {"rgb": rgb.reshape(dirs.shape).clamp(0, 1), "depth": depth, "hit": hit.reshape(dirs.shape[:-1])}

    @torch.inference_mode()
    def density_grid(self, resolution: int) -> Tensor:
        """Density on a resolution³ lattice spanning the box, indexed [z, y, x] (field frame)."""
        axis = torch.linspace(-self.config.bound, self.config.bound, resolution, device=self.volume.device)
        out = torch.empty(resolution, resolution, resolution, device=self.volume.device)
        slab = max(1, 16 * self.chunk // resolution**2)  # z-slices per lookup
        for k in range(0, resolution, slab):
            z, y, x = torch.meshgrid(axis[k : k + slab], axis, axis, indexing="ij")
            out[k : k + slab] = self.density(torch.stack([x, y, z], dim=-1))
        return out
