"""Camera geometry as small pure functions on tensors (kornia style).

Conventions: poses are camera-to-world 4×4 matrices. OpenCV/COLMAP cameras look down +z with y down;
nerfstudio/OpenGL cameras look down −z with y up. The model's frame is the input camera's OpenCV frame
(identity pose), with the object near (0, 0, distance).
"""

from __future__ import annotations

import torch
from torch import Tensor

_FLIP_YZ = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


def opengl_to_opencv(c2w: Tensor) -> Tensor:
    """Camera-to-world in the OpenGL/nerfstudio convention -> OpenCV/COLMAP (flip the camera's y and z axes)."""
    return c2w @ _FLIP_YZ.to(c2w)


def opencv_to_opengl(c2w: Tensor) -> Tensor:
    """Inverse of opengl_to_opencv (the flip is its own inverse)."""
    return c2w @ _FLIP_YZ.to(c2w)


def invert_pose(pose: Tensor) -> Tensor:
    """Inverse of rigid 4×4 transforms [..., 4, 4] without a general matrix inverse."""
    rot, trans = pose[..., :3, :3], pose[..., :3, 3:]
    out = torch.zeros_like(pose)
    out[..., :3, :3] = rot.transpose(-1, -2)
    out[..., :3, 3:] = -rot.transpose(-1, -2) @ trans
    out[..., 3, 3] = 1
    return out


def relative_to(reference: Tensor, poses: Tensor) -> Tensor:
    """Poses expressed in the reference camera's frame (the reference becomes the identity), as NViST does."""
    return invert_pose(reference) @ poses


def world_to_camera_from_colmap(qvec: Tensor, tvec: Tensor) -> Tensor:
    """COLMAP images.txt stores world-to-camera as a unit quaternion (w, x, y, z) and a translation."""
    w, x, y, z = (qvec / qvec.norm(dim=-1, keepdim=True)).unbind(-1)
    rot = torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*qvec.shape[:-1], 3, 3)
    out = torch.zeros(*qvec.shape[:-1], 4, 4, dtype=qvec.dtype, device=qvec.device)
    out[..., :3, :3] = rot
    out[..., :3, 3] = tvec
    out[..., 3, 3] = 1
    return out


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """OpenCV camera-to-world at `eye` looking at `target`; the image's up is as close to `up` as possible."""
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, up.expand_as(forward)), dim=-1)
    down = torch.linalg.cross(forward, right)
    out = torch.zeros(*eye.shape[:-1], 4, 4, dtype=eye.dtype, device=eye.device)
    out[..., :3, 0], out[..., :3, 1], out[..., :3, 2], out[..., :3, 3] = right, down, forward, eye
    out[..., 3, 3] = 1
    return out


def orbit_poses(n: int, distance: float, elevation_deg: float = 0.0, *, start_deg: float = 0.0) -> Tensor:
    """n OpenCV cameras on a circle around (0, 0, distance), in the input camera's frame: view 0 at azimuth
    `start_deg` (0 = the input camera's position when elevation is 0), all looking at the object.

    Each image's x axis is the orbit's direction of travel, horizontal at every elevation, so the cameras stay
    well defined at ±90° (straight above or below the object), where look_at's up vector would be parallel to
    the viewing direction: there the views turn about the vertical axis with their azimuth."""
    if not -90.0 <= elevation_deg <= 90.0:
        raise ValueError(f"elevation_deg must lie in [-90, 90], got {elevation_deg}")
    center = torch.tensor([0.0, 0.0, distance])
    az = torch.deg2rad(start_deg + torch.arange(n) * 360.0 / n)
    el = torch.deg2rad(torch.tensor(float(elevation_deg)))
    cos_el = torch.tensor(0.0) if abs(elevation_deg) == 90.0 else torch.cos(el)  # cos(pi/2) is 6e-17 in floats
    # the input camera sits at -distance along z from the object; y is down, so positive elevation is -y
    offset = torch.stack([-torch.sin(az) * cos_el, -torch.sin(el).expand(n), -torch.cos(az) * cos_el], -1)
    eye = center + distance * offset
    forward = -offset  # unit length: the camera looks at the centre
    right = torch.stack([torch.cos(az), torch.zeros(n), -torch.sin(az)], -1)  # d(eye)/d(azimuth), normalised
    down = torch.linalg.cross(forward, right)
    out = torch.zeros(n, 4, 4)
    out[:, :3, 0], out[:, :3, 1], out[:, :3, 2], out[:, :3, 3] = right, down, forward, eye
    out[:, 3, 3] = 1
    return out


def camera_rays(pose: Tensor, intrinsics: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The one ray builder: rays of OpenCV cameras through image points (u, v) (pixel centres are at +0.5).
    pose [..., 4, 4] camera-to-world and intrinsics [..., 4] (fx, fy, cx, cy) broadcast against u and v [...]
    -> origins and unit directions [..., 3], and the z component of each unit direction in the camera frame
    [...] (it turns a distance along the ray into depth)."""
    fx, fy, cx, cy = intrinsics.unbind(-1)
    cam = torch.stack(torch.broadcast_tensors((u - cx) / fx, (v - cy) / fy, torch.ones_like(u)), dim=-1)
    cam = cam / cam.norm(dim=-1, keepdim=True)
    directions = (pose[..., :3, :3] @ cam[..., None])[..., 0]
    origins = pose[..., :3, 3].expand_as(directions)
    return origins, directions, cam[..., 2].expand(directions.shape[:-1])


def pixel_rays(
    pose: Tensor, fx: float, fy: float, cx: float, cy: float, width: int, height: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Rays through every pixel centre of N OpenCV cameras pose [N, 4, 4]: origins and unit directions
    [N, H, W, 3], and each unit direction's z in the camera frame [N, H, W] (camera_rays)."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=pose.dtype, device=pose.device) + 0.5,
        torch.arange(width, dtype=pose.dtype, device=pose.device) + 0.5,
        indexing="ij",
    )
    intrinsics = torch.tensor([fx, fy, cx, cy], dtype=pose.dtype, device=pose.device)
    return camera_rays(pose[:, None, None], intrinsics, u, v)


def rays_for_pixels(poses: Tensor, intrinsics: Tensor, view: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Rays through pixel centres (u, v) of views `view`: poses [B, V, 4, 4], intrinsics [B, V, 4]
    (fx, fy, cx, cy), view/u/v [B, R] (integer pixel indices) -> origins, unit directions [B, R, 3]
    (camera_rays on each ray's own camera)."""
    pose = poses.gather(1, view[..., None, None].expand(-1, -1, 4, 4))  # [B, R, 4, 4]
    k = intrinsics.gather(1, view[..., None].expand(-1, -1, 4))  # [B, R, 4]
    origins, dirs, _ = camera_rays(pose, k, u + 0.5, v + 0.5)
    return origins, dirs


def nearest_point_to_axes(poses: Tensor) -> Tensor:
    """The point closest to every camera's optical axis, in the least-squares sense (OpenCV c2w [N, 4, 4] -> [3],
    float64): the object of a capture circling it. nerfstudio's "focus" centring."""
    dirs = torch.nn.functional.normalize(poses[:, :3, 2].double(), dim=-1)
    origins = poses[:, :3, 3].double()
    proj = torch.eye(3, dtype=torch.float64) - dirs[:, :, None] * dirs[:, None, :]
    return torch.linalg.lstsq(proj.sum(0), (proj @ origins[:, :, None]).sum(0)).solution[:, 0]


def scale_intrinsics(fx: float, fy: float, cx: float, cy: float, sx: float, sy: float) -> tuple[float, ...]:
    """Intrinsics after resizing an image by (sx, sy)."""
    return fx * sx, fy * sy, cx * sx, cy * sy
