"""scripts/raycast_scenes.py: an independent renderer's scenes, read through our nerfstudio reader and cameras."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nvs import cameras
from nvs.data.masks_depth import read_depth, read_mask
from nvs.data.nerfstudio import read_transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import raycast_scenes  # noqa: E402


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("raycast")
    return raycast_scenes.write_scenes(root, scenes=3, views=4, size=48, seed=7)


def surface_points(view) -> torch.Tensor:
    """World points of the object pixels of one view: our rays, scaled by its depth map."""
    depth = torch.from_numpy(read_depth(view.depth, view.depth_scale, (view.height, view.width)))
    mask = torch.from_numpy(read_mask(view.mask, (view.height, view.width)))
    # interior pixels only: an edge pixel's depth averages the samples that hit, maybe of two parts
    mask = -F.max_pool2d(-mask[None], 3, 1, 1)[0] > 0.5
    origins, dirs, z = cameras.pixel_rays(view.c2w[None], view.fx, view.fy, view.cx, view.cy, view.width, view.height)
    points = origins[0] + dirs[0] * (depth / z[0])[..., None]
    return points[mask & (depth > 0)]


def test_every_view_sees_the_object_surface_the_other_views_see(scenes):
    """Points unprojected from one view's depth (through our OpenCV rays and the OpenGL poses of transforms.json)
    land inside every other view's object mask: the two renderers agree on poses, intrinsics and pixel centres."""
    for folder in sorted(scenes.glob("scene_*")):
        scene = read_transforms(folder)
        for source in scene.views:
            points = surface_points(source)
            assert len(points) > 20, folder
            for target in scene.views:
                cam = cameras.invert_pose(target.c2w)
                local = points @ cam[:3, :3].T + cam[:3, 3]
                u = target.fx * local[:, 0] / local[:, 2] + target.cx
                v = target.fy * local[:, 1] / local[:, 2] + target.cy
                inside = (u >= 0) & (u < target.width) & (v >= 0) & (v < target.height)
                mask = torch.from_numpy(read_mask(target.mask))
                mask = F.max_pool2d(mask[None], 3, 1, 1)[0] > 0.5  # within a pixel of the silhouette
                hits = mask[v[inside].long(), u[inside].long()]
                assert hits.float().mean() > 0.97, (folder.name, float(hits.float().mean()))


def test_a_sphere_projects_to_the_analytic_disc_at_its_depth():
    """One sphere of radius r at the origin, seen from distance d: a disc of radius f·r/√(d²−r²) pixels, whose
    centre lies at depth d − r."""
    import open3d as o3d

    sphere = o3d.geometry.TriangleMesh.create_sphere(0.5, resolution=96)
    sky = np.zeros(3), np.zeros(3)
    scene = raycast_scenes.RaycastScene([sphere], np.ones((1, 3)), None, sky, sun=(0.0, 1.0, 0.0), ambient=0.3)
    size, focal, distance = 64, 50.0, 2.0
    out = scene.render(raycast_scenes.opencv_world_to_camera(distance, 0.3, 0.2), focal, size)
    radius_px = focal * 0.5 / math.sqrt(distance**2 - 0.5**2)
    assert out["mask"].sum() == pytest.approx(math.pi * radius_px**2, rel=0.04)
    assert out["depth"][31:33, 31:33].mean() == pytest.approx(distance - 0.5, abs=0.01)
    assert out["depth"][~out["mask"]].max() == 0.0


def test_the_command_line_writes_scenes_and_refuses_bad_counts(tmp_path, capsys):
    assert raycast_scenes.main(["--out", str(tmp_path / "s"), "--scenes", "1", "--views", "2", "--size", "8"]) == 0
    meta = (tmp_path / "s" / "scene_00000" / "transforms.json").read_text()
    assert '"renderer": "open3d raycast"' in meta
    assert raycast_scenes.main(["--out", str(tmp_path / "t"), "--views", "1"]) == 2
    assert "--views >= 2" in capsys.readouterr().err
