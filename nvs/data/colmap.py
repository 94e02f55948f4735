"""COLMAP sparse models (text or binary), as MVImgNet ships one per scene: `<scene>/images/` and
`<scene>/sparse/0/{cameras,images,points3D}.{txt,bin}` (https://colmap.github.io/format.html)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# model id -> (name, parameter count); the first parameters are always the focal length(s) and principal point
MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
}
_BY_NAME = {name: (i, n) for i, (name, n) in MODELS.items()}
# the views are rendered as pinhole cameras: radial and tangential distortion is left out (as MVImgNet's own
# loaders do), but these models are other projections altogether, so a scene using one is refused
NOT_PINHOLE = {"OPENCV_FISHEYE", "FOV", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE", "THIN_PRISM_FISHEYE"}


@dataclass
class Camera:
    model: str
    width: int
    height: int
    params: tuple[float, ...]

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        """fx, fy, cx, cy of a perspective model (its distortion left out); ValueError for a fisheye model."""
        if self.model in NOT_PINHOLE:
            raise ValueError(f"camera model {self.model} is not a perspective camera; undistort the images first")
        p = self.params
        if self.model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"):
            return p[0], p[0], p[1], p[2]
        return p[0], p[1], p[2], p[3]


@dataclass
class Image:
    name: str
    camera_id: int
    qvec: tuple[float, float, float, float]  # world-to-camera rotation (w, x, y, z)
    tvec: tuple[float, float, float]


def read_model(folder: Path) -> tuple[dict[int, Camera], dict[int, Image], np.ndarray]:
    """cameras, images and the 3-D points [P, 3] of a sparse model folder, text or binary."""
    folder = Path(folder)
    if (folder / "cameras.txt").exists():
        return _read_text(folder)
    if (folder / "cameras.bin").exists():
        return _read_binary(folder)
    raise FileNotFoundError(f"{folder}: no cameras.txt or cameras.bin (not a COLMAP sparse model)")


def _lines(path: Path) -> list[str]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing from the COLMAP model")
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _read_text(folder: Path):
    cameras = {}
    for line in _lines(folder / "cameras.txt"):
        parts = line.split()
        if len(parts) < 5 or parts[1] not in _BY_NAME or len(parts) - 4 != _BY_NAME[parts[1]][1]:
            raise ValueError(f"{folder / 'cameras.txt'}: cannot parse camera line {line!r}")
        cameras[int(parts[0])] = Camera(parts[1], int(parts[2]), int(parts[3]), tuple(map(float, parts[4:])))
    images = {}
    path = folder / "images.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing from the COLMAP model")
    # as COLMAP reads it: skip blank and comment lines to an image's pose line (10 fields, the last its file name,
    # which may hold spaces), then its 2-D points line follows as it is (empty when it has none)
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(maxsplit=9)
        if len(parts) != 10:
            raise ValueError(f"{path}: cannot parse image line {line!r}")
        images[int(parts[0])] = Image(
            parts[9].strip(), int(parts[8]), tuple(map(float, parts[1:5])), tuple(map(float, parts[5:8]))
        )
        next(lines, None)
    points = [list(map(float, line.split()[1:4])) for line in _lines(folder / "points3D.txt")]
    return cameras, images, np.asarray(points, dtype=np.float64).reshape(-1, 3)


def _read_binary(folder: Path):
    def unpack(f, fmt):
        size = struct.calcsize(fmt)
        data = f.read(size)
        if len(data) != size:
            raise ValueError(f"{f.name}: truncated COLMAP binary file")
        return struct.unpack(fmt, data)

    cameras = {}
    with open(folder / "cameras.bin", "rb") as f:
        for _ in range(unpack(f, "<Q")[0]):
            cam_id, model_id, width, height = unpack(f, "<iiQQ")
            if model_id not in MODELS:
                raise ValueError(f"{folder / 'cameras.bin'}: unknown camera model id {model_id}")
            name, count = MODELS[model_id]
            cameras[cam_id] = Camera(name, width, height, unpack(f, f"<{count}d"))
    images = {}
    with open(folder / "images.bin", "rb") as f:
        for _ in range(unpack(f, "<Q")[0]):
            image_id, qw, qx, qy, qz, tx, ty, tz, cam_id = unpack(f, "<I7dI")
            name = b""
            while (char := f.read(1)) not in (b"\x00", b""):
                name += char
            f.seek(unpack(f, "<Q")[0] * 24, 1)  # skip the 2-D points (x, y, point id)
            images[image_id] = Image(name.decode(), cam_id, (qw, qx, qy, qz), (tx, ty, tz))
    points = []
    with open(folder / "points3D.bin", "rb") as f:
        for _ in range(unpack(f, "<Q")[0]):
            _, x, y, z = unpack(f, "<Q3d")
            f.seek(3 + 8, 1)  # rgb, error
            f.seek(unpack(f, "<Q")[0] * 8, 1)  # track (image id, point2D index) pairs
            points.append((x, y, z))
    return cameras, images, np.asarray(points, dtype=np.float64).reshape(-1, 3)


def world_to_camera(image: Image) -> torch.Tensor:
    from ..cameras import world_to_camera_from_colmap

    return world_to_camera_from_colmap(
        torch.tensor(image.qvec, dtype=torch.float64), torch.tensor(image.tvec, dtype=torch.float64)
    )
