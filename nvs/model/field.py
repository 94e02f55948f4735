"""The radiance field NViST predicts: a TensoRF vector-matrix factorisation (three planes, three lines)
decoded by a shared colour MLP, plus a background colour per viewing direction (our addition: NViST's
real scenes fill the box; our synthetic ones have an environment behind the object)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoding import frequency_encoding

# (plane axes, line axis) of the three VM components: xy with z, xz with y, yz with x
COMPONENTS = ((0, 1, 2), (0, 2, 1), (1, 2, 0))


def sample_vm(planes: Tensor, lines: Tensor, points: Tensor) -> Tensor:
    """Plane × line features at points in [-1, 1]³: planes [B, 3, C, R, R], lines [B, 3, C, R],
    points [B, P, 3] -> [B, P, 3, C] (bilinear, align_corners=True, zero outside)."""
    B, _, C, R, _ = planes.shape
    out = []
    for k, (a, b, c) in enumerate(COMPONENTS):
        plane_grid = points[..., [a, b]][:, :, None, :]  # x indexes width (axis a), y height (axis b)
        line_grid = torch.stack([torch.zeros_like(points[..., c]), points[..., c]], dim=-1)[:, :, None, :]
        plane = F.grid_sample(planes[:, k], plane_grid, align_corners=True, padding_mode="zeros")  # [B, C, P, 1]
        line = F.grid_sample(lines[:, k, :, :, None], line_grid, align_corners=True, padding_mode="zeros")
        out.append((plane * line)[..., 0].transpose(1, 2))  # [B, P, C]
    return torch.stack(out, dim=2)


class _FlooredSoftplus(torch.autograd.Function):
    """softplus(max(x, floor)) forward; backward max(sigmoid(x), leak) for every x, so a field driven empty
    early in training (when its colours are still worse than the background's) keeps both a density and a
    colour gradient and can come back, instead of sitting at softplus(-20) ≈ 0 with no gradient at all."""

    @staticmethod
    def forward(ctx, x: Tensor, floor: float, leak: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.leak = leak
        return F.softplus(x.clamp(min=floor))

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x).clamp(min=ctx.leak), None, None


class FieldDecoder(nn.Module):
    """Shared across scenes: density = ReLU (or softplus) of the sum over components of the first `density_channels`
    channels;
    colour = MLP(the other channels of all three components ⊕ frequency-encoded view direction)."""

    def __init__(
        self,
        channels: int = 32,
        density_channels: int = 8,
        hidden: int = 64,
        dir_frequencies: int = 4,
        density_scale: float = 1.0,
        density_activation: str = "relu",
    ):
        super().__init__()
        if density_activation not in ("relu", "softplus", "floored_softplus"):
            raise ValueError(
                f"density_activation: expected 'relu', 'softplus' or 'floored_softplus', got {density_activation!r}"
            )
        self.density_activation = density_activation
        self.density_shift = 4.0  # softplus(raw - 4) ≈ 0.02: space starts almost empty
        self.density_channels = density_channels
        self.density_scale = density_scale
        self.dir_frequencies = dir_frequencies
        colour_in = 3 * (channels - density_channels)
        dir_dim = 3 * (1 + 2 * dir_frequencies)
        self.features = nn.Sequential(nn.Linear(colour_in, hidden), nn.GELU())
        self.colour = nn.Sequential(nn.Linear(hidden + dir_dim, hidden), nn.GELU(), nn.Linear(hidden, 3))

    # The field's public heads. The density and the first colour layer are linear in the VM features, so the
    # baked field (nvs/baked.py) evaluates raw_density and colour_features once on the grid nodes and
    # interpolates them; both renderers then finish with the same activate and rgb, and cannot disagree.

    def raw_density(self, vm: Tensor) -> Tensor:
        """vm [..., 3, C] -> the summed density channels [...], before the activation (linear in vm)."""
        return vm[..., : self.density_channels].sum(dim=(-1, -2))

    def activate(self, raw: Tensor) -> Tensor:
        """Summed density channels -> density."""
        # NViST uses ReLU; softplus (shifted so empty space starts nearly transparent) cannot die, which small
        # models trained briefly need
        if self.density_activation == "relu":
            density = F.relu(raw)
        elif self.density_activation == "softplus":
            density = F.softplus(raw - self.density_shift)
        else:  # softplus(-8) ≈ 3e-4: a faint floor; gradients leak at 1% where softplus saturates
            density = _FlooredSoftplus.apply(raw - self.density_shift, -8.0, 0.01)
        return density * self.density_scale

    def colour_features(self, vm: Tensor) -> Tensor:
        """vm [..., 3, C] -> the first colour layer's output [..., hidden], before its GELU (linear in vm)."""
        return self.features[0](vm[..., self.density_channels :].flatten(-2))

    def direction_term(self, dirs: Tensor) -> Tensor:
        """Unit directions [..., 3] -> their part of the second colour layer, bias included [..., hidden]."""
        layer, hidden = self.colour[0], self.features[0].out_features
        return F.linear(frequency_encoding(dirs, self.dir_frequencies), layer.weight[:, hidden:], layer.bias)

    def rgb(self, features: Tensor, direction_term: Tensor) -> Tensor:
        """colour_features [..., hidden] and direction_term (broadcast against them) -> rgb [..., 3] in 0..1."""
        layer, hidden = self.colour[0], self.features[0].out_features
        mixed = F.gelu(F.gelu(features) @ layer.weight[:, :hidden].T + direction_term)
        return torch.sigmoid(self.colour[2](mixed))

    def forward(self, vm: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """vm [..., 3, C] (sample_vm), dirs [..., 3] unit -> density [...], rgb [..., 3] in 0..1."""
        density = self.activate(self.raw_density(vm))
        return density, self.rgb(self.colour_features(vm), self.direction_term(dirs))


class Background(nn.Module):
    """Background colour for a ray direction, conditioned on the scene's class token."""

    def __init__(self, dim: int, hidden: int = 64, dir_frequencies: int = 2):
        super().__init__()
        self.dir_frequencies = dir_frequencies
        self.scene = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
        self.mlp = nn.Sequential(
            nn.Linear(hidden + 3 * (1 + 2 * dir_frequencies), hidden), nn.GELU(), nn.Linear(hidden, 3)
        )

    def forward(self, scene_token: Tensor, dirs: Tensor) -> Tensor:
        """scene_token [B, D], dirs [B, ..., 3] -> rgb [B, ..., 3]."""
        code = self.scene(scene_token).reshape(scene_token.shape[0], *([1] * (dirs.ndim - 2)), -1)
        code = code.expand(*dirs.shape[:-1], -1)
        return torch.sigmoid(self.mlp(torch.cat([code, frequency_encoding(dirs, self.dir_frequencies)], dim=-1)))


class ProjectedBackground(nn.Module):
    """Background whose first layer is predicted per scene: h = GELU(A(code)·d + b(code) + W·PE(d)), so a scene
    can pick its own directions in the input camera's frame (where "up" depends on the unknown camera tilt)
    and sharp transitions along them (a horizon), which a fixed MLP on [code, PE(d)] blurs."""

    def __init__(self, dim: int, hidden: int = 64, dir_frequencies: int = 2):
        super().__init__()
        self.dir_frequencies, self.hidden = dir_frequencies, hidden
        self.scene = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
        self.projection = nn.Linear(hidden, hidden * 4)  # per scene: [hidden, 3] directions and [hidden] offsets
        self.encoded = nn.Linear(3 * (1 + 2 * dir_frequencies), hidden)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 3))

    def forward(self, scene_token: Tensor, dirs: Tensor) -> Tensor:
        """scene_token [B, D], dirs [B, ..., 3] -> rgb [B, ..., 3]."""
        B, H = scene_token.shape[0], self.hidden
        code = self.scene(scene_token)
        proj = self.projection(code)
        A, b = proj[:, : 3 * H].reshape(B, H, 3), proj[:, 3 * H :]
        flat = dirs.reshape(B, -1, 3)
        h = (
            torch.einsum("bhk,bnk->bnh", A, flat)
            + b[:, None]
            + self.encoded(frequency_encoding(flat, self.dir_frequencies))
        )
        h = torch.cat([F.gelu(h), code[:, None].expand(-1, flat.shape[1], -1)], dim=-1)
        return torch.sigmoid(self.mlp(h)).reshape(*dirs.shape)
