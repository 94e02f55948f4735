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

from .model.field import sample_vm
from .model.nvist import RadianceField
from .model.volume_rendering import ray_box, render_rays


class BakedField(RadianceField):
    """One photo's field on its grid nodes: density() and colour() at points in the field's frame (object
    at the origin); render() is RadianceField.render (same arguments, same outputs, plus `hit`) with this
    field's render_rays."""

    def __init__(self, field: RadianceField, chunk: int = 16384):
        super().__init__(field.model, field.codes, field.distance, field.focal, chunk)
        self.field, self.config = field, field.model.config
        self.decoder = self.model.field_decoder
        self.volume = self._bake()  # [1, 1 + hidden, R, R, R] (z, y, x): raw density, then colour features

    @torch.inference_mode()
    def _bake(self) -> Tensor:
        """The decoder's linear heads (raw_density, colour_features) on the R³ grid nodes."""
        res, codes = self.config.field_resolution, self.codes
        axis = torch.linspace(-1, 1, res, device=codes.planes.device)
        z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
        nodes = torch.stack([x, y, z], dim=-1).reshape(1, -1, 3)
        vm = sample_vm(codes.planes, codes.lines, nodes)[0]  # [R³, 3, C], exact at the nodes
        raw, features = self.decoder.raw_density(vm), self.decoder.colour_features(vm)
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

    def density(self, points: Tensor) -> Tensor:
        """points [..., 3] in the field's frame -> density [...]."""
        return self.decoder.activate(self._lookup(points, slice(0, 1))[..., 0])

    def colour(self, points: Tensor, dirs: Tensor) -> Tensor:
        """points [..., 3] and unit viewing directions [..., 3] -> rgb [..., 3] in 0..1."""
        return self.decoder.rgb(self._lookup(points, slice(1, None)), self.decoder.direction_term(dirs))

    def _field_fn(self, points: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """render_rays' field: points and dirs [..., S, 3]; the direction term is computed once per ray."""
        values = self._lookup(points, slice(None))
        rgb = self.decoder.rgb(values[..., 1:], self.decoder.direction_term(dirs[..., 0, :])[..., None, :])
        return self.decoder.activate(values[..., 0]), rgb

    def render_rays(self, origins: Tensor, dirs: Tensor) -> dict[str, Tensor]:
        """Rays [P, 3] in the field's frame -> rgb [P, 3], distance [P], opacity (accumulated alpha) [P] and hit
        [P]; rays that miss the box only see the background (as render_rays would give them: opacity 0) and skip
        the samples."""
        c = self.config
        _, far, hit = ray_box(origins, dirs, c.bound)
        rgb = self.model.background(self.codes.scene_token, dirs[None])[0]
        distance, opacity = far.clone(), torch.zeros_like(far)
        if hit.any():
            out = render_rays(
                self._field_fn,
                lambda d: self.model.background(self.codes.scene_token, d[None])[0],
                origins[hit],
                dirs[hit],
                bound=c.bound,
                samples=c.samples,
                importance=c.importance,
            )
            rgb[hit], distance[hit], opacity[hit] = out["rgb"], out["distance"], out["opacity"]
        return {"rgb": rgb, "distance": distance, "opacity": opacity, "hit": hit}

    @torch.inference_mode()
    def render(
        self, poses: Tensor, *, fx: float, fy: float, cx: float, cy: float, width: int, height: int
    ) -> dict[str, Tensor]:
        """OpenCV camera-to-world poses [N, 4, 4] relative to the input camera -> rgb [N, H, W, 3], depth and
        opacity [N, H, W] (as RadianceField.render) and hit [N, H, W] (whether the ray crosses the field's box)."""
        return super().render(poses, fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height)

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
