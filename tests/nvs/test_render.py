"""Volume rendering and the vector-matrix field against analytic and naive computations."""

import math

import pytest
import torch

from nvs.model.field import COMPONENTS, sample_vm
from nvs.model.volume_rendering import (
    composite,
    distortion_loss,
    interval_edges,
    ray_box,
    render_rays,
    sample_pdf,
    stratified,
)


def test_ray_box_hand_worked():
    origins = torch.tensor([[0.0, 0.0, -2.0], [0.0, 2.0, -2.0], [0.3, 0.0, 0.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    near, far, hit = ray_box(origins, dirs, 0.8)
    assert hit.tolist() == [True, False, True]
    assert near[0] == pytest.approx(1.2) and far[0] == pytest.approx(2.8)
    assert near[2] == pytest.approx(0.0) and far[2] == pytest.approx(0.5)  # starts inside the box


@pytest.mark.parametrize("samples", [1, 7, 64])
def test_constant_density_matches_beer_lambert(samples):
    near, far = torch.tensor([0.5]), torch.tensor([2.0])
    t = stratified(near, far, samples, jitter=True)
    edges = interval_edges(t, near, far)
    sigma = 1.3
    weights, rgb, opacity = composite(torch.full((1, samples), sigma), torch.ones(1, samples, 3) * 0.25, edges)
    assert opacity.item() == pytest.approx(1 - math.exp(-sigma * 1.5), rel=1e-5)
    assert rgb[0].tolist() == pytest.approx([0.25 * opacity.item()] * 3, rel=1e-5)


def test_distortion_loss_matches_the_naive_double_sum():
    g = torch.Generator().manual_seed(0)
    t = torch.sort(torch.rand(4, 9, generator=g) * 3 + 1).values
    near, far = torch.full((4,), 0.9), torch.full((4,), 4.2)
    edges = interval_edges(t, near, far)
    weights = torch.rand(4, 9, generator=g) / 9
    s = (edges - edges[:, :1]) / (edges[:, -1:] - edges[:, :1])
    mids, widths = (s[:, 1:] + s[:, :-1]) / 2, s[:, 1:] - s[:, :-1]
    naive = (weights[:, :, None] * weights[:, None, :] * (mids[:, :, None] - mids[:, None, :]).abs()).sum((1, 2))
    naive += (weights**2 * widths).sum(1) / 3
    assert torch.allclose(distortion_loss(weights, edges), naive, atol=1e-6)


def test_importance_samples_fall_where_the_weight_is():
    edges = torch.linspace(0, 1, 11)[None]
    weights = torch.zeros(1, 10)
    weights[0, 6] = 1.0
    samples = sample_pdf(edges, weights, 200, jitter=True)
    assert ((samples >= 0.6) & (samples <= 0.7)).float().mean() > 0.98


def test_empty_field_renders_the_background():
    origins = torch.tensor([[[0.0, 0.0, -2.0], [0.0, 3.0, -2.0]]])
    dirs = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])

    def field(points, point_dirs):
        return torch.zeros(points.shape[:-1]), torch.zeros(points.shape)

    out = render_rays(
        field, lambda d: torch.full((*d.shape[:-1], 3), 0.7), origins, dirs, bound=0.8, samples=16, importance=8
    )
    assert torch.allclose(out["rgb"], torch.full((1, 2, 3), 0.7))
    assert out["distance"][0, 0] == pytest.approx(2.8)  # box exit


def test_solid_slab_is_seen_at_its_depth():
    """A dense slab filling z in [-0.1, 0.8] of the box: the camera at z = -2 sees it at distance 1.9."""

    def field(points, point_dirs):
        density = torch.where(points[..., 2] > -0.1, 1e4, 0.0)
        return density, torch.ones(points.shape) * torch.tensor([1.0, 0.0, 0.0])

    origins, dirs = torch.tensor([[[0.0, 0.0, -2.0]]]), torch.tensor([[[0.0, 0.0, 1.0]]])
    out = render_rays(
        field, lambda d: torch.zeros(*d.shape[:-1], 3), origins, dirs, bound=0.8, samples=32, importance=64
    )
    assert out["opacity"].item() == pytest.approx(1.0, abs=1e-4)
    assert out["rgb"][0, 0].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-4)
    assert out["distance"].item() == pytest.approx(1.9, abs=0.02)


def test_half_transparent_slab_stays_at_its_depth():
    """A slab of uniform density σ over distances [a, a + L] with σL = ln 2 lets half the light through; the
    weights' mean distance is a + 1/σ − L·e^(−σL)/(1 − e^(−σL)) (the exponential's mean, cut at L), whatever lies
    behind the slab. Its opacity is 0.5, so counting the transparent half at the box exit would put it at 2.44."""
    a, thickness = 2.0, 0.2
    sigma = math.log(2) / thickness

    def field(points, point_dirs):
        inside = (points[..., 2] >= 0.0) & (points[..., 2] < thickness)
        return torch.where(inside, sigma, 0.0), torch.ones(points.shape)

    origins, dirs = torch.tensor([[[0.0, 0.0, -a]]]), torch.tensor([[[0.0, 0.0, 1.0]]])
    out = render_rays(field, lambda d: torch.zeros(*d.shape[:-1], 3), origins, dirs, bound=0.8, samples=640)
    through = math.exp(-sigma * thickness)  # 0.5
    expected = a + 1 / sigma - thickness * through / (1 - through)
    assert out["opacity"].item() == pytest.approx(0.5, abs=0.01)
    assert out["distance"].item() == pytest.approx(expected, abs=0.005)


def test_vm_sampling_at_grid_nodes_is_plane_times_line():
    g = torch.Generator().manual_seed(0)
    R, C = 5, 4
    planes, lines = torch.randn(1, 3, C, R, R, generator=g), torch.randn(1, 3, C, R, generator=g)
    idx = torch.tensor([[1, 3, 4], [0, 2, 2]])  # grid node indices per axis (x, y, z)
    points = (idx.float() / (R - 1) * 2 - 1)[None]  # align_corners=True: -1 -> node 0, +1 -> node R-1
    out = sample_vm(planes, lines, points)
    for p in range(2):
        for k, (a, b, c) in enumerate(COMPONENTS):
            expected = planes[0, k, :, idx[p, b], idx[p, a]] * lines[0, k, :, idx[p, c]]
            assert torch.allclose(out[0, p, k], expected, atol=1e-6)


def test_floored_softplus_keeps_a_gradient_where_softplus_saturates():
    """The density the field starts or falls into far below zero still gets a (1%) gradient, and a faint floor."""
    from nvs.model.field import FieldDecoder

    field = FieldDecoder(32, 8, 16, density_activation="floored_softplus")
    vm = torch.full((4, 3, 32), -10.0, requires_grad=True)
    density, _ = field(vm, torch.nn.functional.normalize(torch.randn(4, 3), dim=-1))
    assert torch.allclose(density, torch.nn.functional.softplus(torch.tensor(-8.0)).expand(4))
    density.sum().backward()
    assert torch.allclose(vm.grad[..., :8], torch.full((4, 3, 8), 0.01))
    x = torch.linspace(-3, 5, 9, requires_grad=True)  # above the floor: exactly softplus and its gradient
    field.density_shift = 0.0
    field(x[:, None, None].expand(-1, 3, 32) / 24, torch.zeros(9, 3))[0].sum().backward()
    assert torch.allclose(x.grad, torch.sigmoid(x).clamp(min=0.01), atol=1e-6)


def test_projected_background_shapes_and_gradients():
    from nvs.model.field import ProjectedBackground

    head = ProjectedBackground(16, hidden=8)
    token = torch.randn(2, 16, requires_grad=True)
    rgb = head(token, torch.nn.functional.normalize(torch.randn(2, 5, 7, 3), dim=-1))
    assert rgb.shape == (2, 5, 7, 3) and ((rgb > 0) & (rgb < 1)).all()
    rgb.sum().backward()
    assert token.grad.abs().sum() > 0 and all(p.grad is not None for p in head.parameters())
