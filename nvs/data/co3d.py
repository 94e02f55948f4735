"""CO3Dv2: `<root>/<category>/frame_annotations.jgz` (gzipped JSON list of frames) with images under `<root>/`.

Each frame's viewpoint is PyTorch3D's: a point maps to the camera as X_cam = X_world·R + T (row vectors), the
camera's +x points left and +y up, and focal length / principal point are in NDC units ("ndc_isotropic": the
shorter image side spans [-1, 1]; "ndc_norm_image_bounds": each side does). The object centre is the point
nearest to every camera's optical axis (the captures circle the object); the scale puts the cameras' mean
distance to it at 2.0.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

import torch

from ..cameras import invert_pose, nearest_point_to_axes
from .scenes import Scene, View

CAMERA_DISTANCE = 2.0
_P3D_TO_OPENCV = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))


def frame_to_view(frame: dict, root: Path) -> View:
    vp = frame["viewpoint"]
    height, width = frame["image"]["size"]
    R, T = torch.tensor(vp["R"], dtype=torch.float64), torch.tensor(vp["T"], dtype=torch.float64)
    if R.shape != (3, 3) or T.shape != (3,):
        raise ValueError(f"frame {frame.get('frame_number')}: viewpoint R must be 3x3 and T 3 values")
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, :3] = _P3D_TO_OPENCV @ R.T  # column-vector rotation, then flip x and y to OpenCV's
    w2c[:3, 3] = _P3D_TO_OPENCV @ T
    fmt = vp.get("intrinsics_format", "ndc_norm_image_bounds")
    if fmt == "ndc_isotropic":
        half_x = half_y = min(height, width) / 2
    elif fmt == "ndc_norm_image_bounds":
        half_x, half_y = width / 2, height / 2
    else:
        raise ValueError(f"frame {frame.get('frame_number')}: unknown intrinsics_format {fmt!r}")
    (fx, fy), (px, py) = vp["focal_length"], vp["principal_point"]
    # NDC +x is left and +y up: pixel = centre - ndc * half-size
    view = View(
        root / frame["image"]["path"],
        invert_pose(w2c).float(),
        fx * half_x,
        fy * half_y,
        width / 2 - px * half_x,
        height / 2 - py * half_y,
        int(width),
        int(height),
    )
    if not view.image.is_file():
        raise FileNotFoundError(f"frame {frame.get('frame_number')}: image {view.image} does not exist")
    return view


def find_scenes(root: str | Path) -> list[Scene]:
    root = Path(root)
    files = sorted(root.glob("*/frame_annotations.jgz"))
    if not files:
        raise FileNotFoundError(f"root: no <category>/frame_annotations.jgz under {root}")
    scenes = []
    for path in files:
        try:
            with gzip.open(path, "rt") as f:
                frames = json.load(f)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a gzipped JSON list of frame annotations: {error}") from error
        sequences = defaultdict(list)
        for frame in frames:
            sequences[frame["sequence_name"]].append(frame)
        for name, seq in sorted(sequences.items()):
            views = tuple(frame_to_view(f, root) for f in sorted(seq, key=lambda f: f["frame_number"]))
            if len(views) < 2:
                continue
            poses = torch.stack([v.c2w for v in views])
            centre = nearest_point_to_axes(poses)
            distance = (poses[:, :3, 3].double() - centre).norm(dim=-1).mean()
            scenes.append(Scene(name, views, centre.float(), float(CAMERA_DISTANCE / distance)))
    return scenes
