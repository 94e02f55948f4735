"""MVImgNet (COLMAP text and binary) and CO3Dv2 loaders on fixtures written from the formats' specifications."""

import gzip
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nvs.data import co3d, mvimgnet
from nvs.data.colmap import read_model

# two cameras: one at the world origin looking down +z, one turned 90° about y (w, x, y, z quaternions)
QUATS = [(1.0, 0.0, 0.0, 0.0), (math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0)]
TRANS = [(0.0, 0.0, 3.0), (0.0, 0.0, 3.0)]
POINTS = np.array([[0.1, 0.0, 0.0], [-0.1, 0.2, 0.1], [0.0, -0.2, -0.1], [0.3, 0.1, 0.2], [5.0, 5.0, 5.0]])


def _images(scene: Path):
    (scene / "images").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(scene / "images" / f"im{i}.jpg")


def write_colmap_text(scene: Path):
    _images(scene)
    model = scene / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text("# Camera list\n1 PINHOLE 16 12 20.0 21.0 8.0 6.0\n")
    lines = ["# Image list with two lines of data per image:"]
    for i, (q, t) in enumerate(zip(QUATS, TRANS, strict=True)):
        lines.append(f"{i + 1} {' '.join(map(str, q))} {' '.join(map(str, t))} 1 im{i}.jpg")
        lines.append("1.0 2.0 -1 3.0 4.0 1" if i == 0 else "")
    (model / "images.txt").write_text("\n".join(lines) + "\n")
    (model / "points3D.txt").write_text(
        "".join(f"{i + 1} {x} {y} {z} 255 0 0 0.5 1 0\n" for i, (x, y, z) in enumerate(POINTS))
    )


def write_colmap_binary(scene: Path):
    _images(scene)
    model = scene / "sparse" / "0"
    model.mkdir(parents=True)
    with open(model / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", 1) + struct.pack("<iiQQ", 1, 1, 16, 12) + struct.pack("<4d", 20.0, 21.0, 8.0, 6.0))
    with open(model / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", 2))
        for i, (q, t) in enumerate(zip(QUATS, TRANS, strict=True)):
            f.write(struct.pack("<I7dI", i + 1, *q, *t, 1) + f"im{i}.jpg".encode() + b"\x00")
            f.write(struct.pack("<Q", 1) + struct.pack("<ddq", 1.0, 2.0, -1))
    with open(model / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(POINTS)))
        for i, p in enumerate(POINTS):
            f.write(struct.pack("<Q3d", i + 1, *p) + bytes([255, 0, 0]) + struct.pack("<d", 0.5))
            f.write(struct.pack("<Q", 1) + struct.pack("<ii", 1, 0))


@pytest.mark.parametrize("writer", [write_colmap_text, write_colmap_binary])
def test_mvimgnet_scene_from_colmap(writer, tmp_path):
    writer(tmp_path / "chair" / "scene1")
    (scene,) = mvimgnet.find_scenes(tmp_path)
    a, b = scene.views
    assert (a.fx, a.fy, a.cx, a.cy, a.width, a.height) == (20.0, 21.0, 8.0, 6.0, 16, 12)
    # world-to-camera t = (0, 0, 3) with no rotation: the camera centre is at (0, 0, -3)
    assert torch.allclose(a.c2w[:3, 3], torch.tensor([0.0, 0.0, -3.0])) and torch.allclose(a.c2w[:3, :3], torch.eye(3))
    # the second camera is turned 90° about y: its optical axis (+z) points along world -x
    assert torch.allclose(b.c2w[:3, 2], torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6)
    centre = np.median(POINTS, axis=0)
    assert torch.allclose(scene.center, torch.tensor(centre, dtype=torch.float32))
    radius = np.quantile(np.linalg.norm(POINTS - centre, axis=1), 0.9)
    assert scene.scale == pytest.approx(0.6 / radius)


def test_text_and_binary_models_agree(tmp_path):
    write_colmap_text(tmp_path / "t")
    write_colmap_binary(tmp_path / "b")
    text, binary = read_model(tmp_path / "t/sparse/0"), read_model(tmp_path / "b/sparse/0")
    assert text[0] == binary[0] and text[1] == binary[1] and np.allclose(text[2], binary[2])


def test_file_names_with_spaces_in_both_models(tmp_path):
    for writer, folder in ((write_colmap_text, "t"), (write_colmap_binary, "b")):
        writer(tmp_path / folder)
        (tmp_path / folder / "images/im1.jpg").rename(tmp_path / folder / "images/im 1.jpg")
    text_model = tmp_path / "t/sparse/0/images.txt"
    text_model.write_text(text_model.read_text().replace("im1.jpg", "im 1.jpg"))
    binary_model = tmp_path / "b/sparse/0/images.bin"
    binary_model.write_bytes(binary_model.read_bytes().replace(b"im1.jpg\x00", b"im 1.jpg\x00"))
    text, binary = read_model(tmp_path / "t/sparse/0"), read_model(tmp_path / "b/sparse/0")
    assert sorted(image.name for image in text[1].values()) == ["im 1.jpg", "im0.jpg"] and text[1] == binary[1]
    assert [view.image.name for view in mvimgnet.read_scene(tmp_path / "t").views] == ["im 1.jpg", "im0.jpg"]


@pytest.mark.parametrize("camera", ["OPENCV_FISHEYE 16 12 20 21 8 6 0.1 0 0 0", "FOV 16 12 20 21 8 6 0.9"])
def test_fisheye_cameras_are_refused_by_name(camera, tmp_path):
    write_colmap_text(tmp_path / "s")
    (tmp_path / "s/sparse/0/cameras.txt").write_text(f"1 {camera}\n")
    with pytest.raises(ValueError, match=camera.split()[0]):
        mvimgnet.find_scenes(tmp_path)


def test_colmap_errors(tmp_path):
    write_colmap_binary(tmp_path / "s")
    data = (tmp_path / "s/sparse/0/images.bin").read_bytes()
    (tmp_path / "s/sparse/0/images.bin").write_bytes(data[:30])
    with pytest.raises(ValueError, match="truncated"):
        mvimgnet.find_scenes(tmp_path)
    with pytest.raises(FileNotFoundError, match="no <scene>/sparse/0"):
        mvimgnet.find_scenes(tmp_path / "s" / "images")
    write_colmap_text(tmp_path / "t")
    (tmp_path / "t/sparse/0/cameras.txt").write_text("1 PINHOLE 16 12 20.0 21.0 8.0\n")  # PINHOLE takes four
    with pytest.raises(ValueError, match="cannot parse camera line"):
        read_model(tmp_path / "t/sparse/0")


def write_co3d(root: Path, fmt="ndc_isotropic"):
    seq = root / "teddybear" / "34_1_2" / "images"
    seq.mkdir(parents=True)
    frames = []
    for i, (angle, T) in enumerate([(0.0, [0.0, 0.0, 3.0]), (math.pi / 2, [0.0, 0.0, 3.0])]):
        c, s = math.cos(angle), math.sin(angle)
        R = [[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]]
        Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(seq / f"frame{i:06d}.jpg")
        frames.append(
            {
                "sequence_name": "34_1_2",
                "frame_number": i,
                "frame_timestamp": 0.1 * i,
                "image": {"path": f"teddybear/34_1_2/images/frame{i:06d}.jpg", "size": [100, 200]},
                "viewpoint": {
                    "R": R,
                    "T": T,
                    "focal_length": [2.0, 2.0],
                    "principal_point": [0.1, -0.2],
                    "intrinsics_format": fmt,
                },
            }
        )
    with gzip.open(root / "teddybear" / "frame_annotations.jgz", "wt") as f:
        json.dump(frames, f)


def test_co3d_cameras_project_like_pytorch3d(tmp_path):
    write_co3d(tmp_path)
    (scene,) = co3d.find_scenes(tmp_path)
    view = scene.views[0]
    assert (view.fx, view.fy) == (100.0, 100.0)  # 2.0 NDC units x half the shorter side (50 px)
    point = torch.tensor([0.4, 0.3, 0.5], dtype=torch.float64)
    # PyTorch3D: X_cam = X_world R + T; ndc = f * X_cam[:2] / Z + p; +x left, +y up in NDC
    cam = point + torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64)
    ndc = 2.0 * cam[:2] / cam[2] + torch.tensor([0.1, -0.2], dtype=torch.float64)
    expected_pixel = (100 - ndc[0] * 50, 50 - ndc[1] * 50)  # centre minus ndc x half the shorter side
    w2c = torch.linalg.inv(view.c2w.double())
    p = w2c[:3, :3] @ point + w2c[:3, 3]
    pixel = (view.fx * p[0] / p[2] + view.cx, view.fy * p[1] / p[2] + view.cy)
    assert pixel[0].item() == pytest.approx(expected_pixel[0].item(), abs=1e-4)
    assert pixel[1].item() == pytest.approx(expected_pixel[1].item(), abs=1e-4)
    # both cameras look at the world origin from 3 units away: that is the centre, and the scale makes it 2
    assert torch.allclose(scene.center, torch.zeros(3), atol=1e-5) and scene.scale == pytest.approx(2.0 / 3.0)


def test_co3d_missing_annotations(tmp_path):
    with pytest.raises(FileNotFoundError, match="frame_annotations"):
        co3d.find_scenes(tmp_path)
