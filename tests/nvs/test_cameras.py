"""Camera functions against kornia and hand-worked cases."""

import math

import kornia
import pytest
import torch

from nvs import cameras


def random_pose(seed=0):
    g = torch.Generator().manual_seed(seed)
    quat = torch.randn(4, generator=g, dtype=torch.float64)
    pose = cameras.world_to_camera_from_colmap(quat, torch.randn(3, generator=g, dtype=torch.float64))
    return pose


def test_colmap_quaternion_matches_kornia():
    q = torch.tensor([0.3, -0.5, 0.2, 0.7], dtype=torch.float64)
    ours = cameras.world_to_camera_from_colmap(q, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    theirs = kornia.geometry.conversions.quaternion_to_rotation_matrix(q / q.norm())  # (w, x, y, z)
    assert torch.allclose(ours[:3, :3], theirs, atol=1e-12)
    assert ours[:3, 3].tolist() == [1.0, 2.0, 3.0] and ours[3].tolist() == [0, 0, 0, 1]


def test_invert_and_relative_pose():
    a, b = random_pose(1), random_pose(2)
    assert torch.allclose(cameras.invert_pose(a), torch.linalg.inv(a), atol=1e-12)
    assert torch.allclose(cameras.relative_to(a, a), torch.eye(4, dtype=torch.float64), atol=1e-12)
    rel = cameras.relative_to(a, b)
    assert torch.allclose(a @ rel, b, atol=1e-12)  # b = a · rel: rel is b seen from a's frame


def test_opengl_opencv_conversion_flips_the_viewing_axis():
    gl = random_pose(3)
    cv = cameras.opengl_to_opencv(gl)
    assert torch.allclose(cv[:3, 2], -gl[:3, 2]) and torch.allclose(cv[:3, 1], -gl[:3, 1])
    assert torch.allclose(cv[:3, 0], gl[:3, 0]) and torch.allclose(cv[:3, 3], gl[:3, 3])
    assert torch.allclose(cameras.opencv_to_opengl(cv), gl)


def test_pixel_rays_match_kornia_unprojection():
    pose = random_pose(4).float()
    fx, fy, cx, cy, w, h = 50.0, 60.0, 16.5, 12.0, 32, 24
    origins, dirs, z = cameras.pixel_rays(pose[None], fx, fy, cx, cy, w, h)
    K = torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    v, u = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    pts = torch.stack([u, v], -1).reshape(-1, 2)
    cam_pts = kornia.geometry.camera.unproject_points(pts, torch.ones(pts.shape[0], 1), K, normalize=True)
    expected = (pose[:3, :3] @ cam_pts.T).T.reshape(h, w, 3)
    assert torch.allclose(dirs[0], expected, atol=1e-5)
    assert torch.allclose(origins[0], pose[:3, 3].expand(h, w, 3))
    assert torch.allclose(z[0], cam_pts[:, 2].reshape(h, w), atol=1e-6)


def test_centre_ray_of_identity_camera_looks_down_plus_z():
    _, dirs, _ = cameras.pixel_rays(torch.eye(4)[None], 10.0, 10.0, 2.0, 2.0, 4, 4)
    centre = dirs[0, 1:3, 1:3].mean((0, 1))
    assert torch.allclose(centre / centre.norm(), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)


def test_look_at_points_the_optical_axis_at_the_target():
    eye, target = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 0.0, 3.0])
    pose = cameras.look_at(eye, target, torch.tensor([0.0, -1.0, 0.0]))
    assert torch.allclose(pose[:3, 2], (target - eye) / (target - eye).norm(), atol=1e-6)
    assert torch.allclose(pose[:3, :3] @ pose[:3, :3].T, torch.eye(3), atol=1e-6)
    assert torch.linalg.det(pose[:3, :3]) == pytest.approx(1.0, abs=1e-6)


def test_orbit_starts_at_the_input_camera_and_circles_the_object():
    poses = cameras.orbit_poses(8, distance=2.0)
    assert torch.allclose(poses[0], torch.eye(4), atol=1e-6)
    centres = poses[:, :3, 3]
    assert torch.allclose((centres - torch.tensor([0.0, 0.0, 2.0])).norm(dim=-1), torch.full((8,), 2.0), atol=1e-6)
    assert torch.allclose(poses[4, :3, 3], torch.tensor([0.0, 0.0, 4.0]), atol=1e-6)  # opposite side
    up = cameras.orbit_poses(1, distance=2.0, elevation_deg=30.0)[0]
    assert up[1, 3] == pytest.approx(-2.0 * math.sin(math.radians(30)), abs=1e-6)  # above: -y is up
