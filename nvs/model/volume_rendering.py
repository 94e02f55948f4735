"""Volume rendering inside an axis-aligned box: jittered stratified samples, optional importance resampling,
alpha compositing over a background, the expected distance of the weights and the distortion loss (Mip-NeRF 360)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

FieldFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (points, dirs) -> (density, rgb)


def ray_box(origins: Tensor, dirs: Tensor, bound: float) -> tuple[Tensor, Tensor, Tensor]:
    """Entry and exit distances of rays through [-bound, bound]³ (slab method) and whether they hit it."""
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0, t1 = (-bound - origins) / safe, (bound - origins) / safe
    near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=0.0)
    far = torch.maximum(t0, t1).amin(dim=-1)
    hit = far > near
    return near, torch.where(hit, far, near + 1e-3), hit


def stratified(near: Tensor, far: Tensor, samples: int, jitter: bool) -> Tensor:
    """One sample per equal bin between near and far: a random point in the bin, or its centre."""
    offset = (
        torch.rand(*near.shape, samples, device=near.device)
        if jitter
        else torch.full((*near.shape, samples), 0.5, device=near.device)
    )
    u = (torch.arange(samples, device=near.device) + offset) / samples
    return near[..., None] + (far - near)[..., None] * u


def interval_edges(t: Tensor, near: Tensor, far: Tensor) -> Tensor:
    """Sorted sample distances [..., S] -> the edges of the intervals they stand for [..., S+1]."""
    mids = 0.5 * (t[..., 1:] + t[..., :-1])
    return torch.cat([near[..., None], mids, far[..., None]], dim=-1)


def sample_pdf(edges: Tensor, weights: Tensor, samples: int, jitter: bool) -> Tensor:
    """Inverse-CDF samples of the piecewise-constant density `weights` over intervals `edges` (NeRF)."""
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), pdf.cumsum(dim=-1).clamp(max=1.0)], dim=-1)
    if jitter:
        u = torch.rand(*cdf.shape[:-1], samples, device=cdf.device)
    else:
        u = (torch.arange(samples, device=cdf.device) + 0.5).expand(*cdf.shape[:-1], samples) / samples
    idx = torch.searchsorted(cdf.contiguous(), u.contiguous(), right=True).clamp(1, cdf.shape[-1] - 1)
    c0, c1 = cdf.gather(-1, idx - 1), cdf.gather(-1, idx)
    e0, e1 = edges.gather(-1, idx - 1), edges.gather(-1, idx)
    frac = ((u - c0) / (c1 - c0).clamp(min=1e-8)).clamp(0, 1)
    return e0 + frac * (e1 - e0)


def composite(density: Tensor, rgb: Tensor, edges: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Alpha compositing of samples over intervals: weights [..., S], colour [..., 3] and opacity [...]."""
    deltas = edges[..., 1:] - edges[..., :-1]
    alpha = 1.0 - torch.exp(-density * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1.0 - alpha + 1e-10], dim=-1), dim=-1)[
        ..., :-1
    ]
    weights = alpha * transmittance
    return weights, (weights[..., None] * rgb).sum(dim=-2), weights.sum(dim=-1)


def distortion_loss(weights: Tensor, edges: Tensor) -> Tensor:
    """Mip-NeRF 360's L_dist per ray, Σ_ij w_i w_j |m_i − m_j| + ⅓ Σ_i w_i² δ_i, on distances normalised
    to [0, 1] along each ray; O(S) via prefix sums."""
    span = (edges[..., -1:] - edges[..., :1]).clamp(min=1e-8)
    s = (edges - edges[..., :1]) / span
    mids, widths = 0.5 * (s[..., 1:] + s[..., :-1]), s[..., 1:] - s[..., :-1]
    w_before = torch.cumsum(weights, dim=-1) - weights
    wm_before = torch.cumsum(weights * mids, dim=-1) - weights * mids
    pairwise = 2.0 * (weights * (mids * w_before - wm_before)).sum(dim=-1)
    return pairwise + (weights.square() * widths).sum(dim=-1) / 3.0


def render_rays(
    field: FieldFn,
    background: Callable[[Tensor], Tensor],
    origins: Tensor,
    dirs: Tensor,
    *,
    bound: float,
    samples: int,
    importance: int = 0,
    jitter: bool = False,
) -> dict[str, Tensor]:
    """Rays [..., 3] -> rgb [..., 3], distance (expected, along the ray) [...], opacity [...], distortion [...]."""
    near, far, hit = ray_box(origins, dirs, bound)
    t = stratified(near, far, samples, jitter)
    edges = interval_edges(t, near, far)

    def evaluate(t: Tensor, edges: Tensor):
        points = origins[..., None, :] + t[..., None] * dirs[..., None, :]
        density, rgb = field(points, dirs[..., None, :].expand_as(points))
        return composite(density * hit[..., None], rgb, edges)

    weights, rgb, opacity = evaluate(t, edges)
    if importance > 0:
        extra = sample_pdf(edges, weights.detach(), importance, jitter)
        t = torch.sort(torch.cat([t, extra.detach()], dim=-1), dim=-1).values
        edges = interval_edges(t, near, far)
        weights, rgb, opacity = evaluate(t, edges)
    rgb = rgb + (1.0 - opacity)[..., None] * background(dirs)
    return {
        "rgb": rgb,
        "distance": expected_distance(weights, edges, far),
        "opacity": opacity,
        "distortion": distortion_loss(weights, edges),
    }


def expected_distance(weights: Tensor, edges: Tensor, far: Tensor, eps: float = 1e-6) -> Tensor:
    """Where along each ray the field's weights sit: Σ_i w_i m_i / Σ_i w_i (m_i the interval midpoints), as
    nerfstudio's expected depth; a ray with no weight at all lies at `far`. The transparent remainder does not
    count: a half-transparent surface stays where it is, and opacity says how sure the field is of it."""
    mids = 0.5 * (edges[..., 1:] + edges[..., :-1])
    return ((weights * mids).sum(dim=-1) + eps * far) / (weights.sum(dim=-1) + eps)


def render_in_chunks(
    render: Callable[[Tensor, Tensor], dict[str, Tensor]], origins: Tensor, dirs: Tensor, chunk: int
) -> dict[str, Tensor]:
    """The one chunked-render loop: rays [P, 3] through `render` `chunk` rays at a time (so memory stays bounded
    whatever the image size) -> each of its outputs [P, ...], concatenated."""
    parts = [render(origins[s : s + chunk], dirs[s : s + chunk]) for s in range(0, origins.shape[0], chunk)]
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
