"""nerfstudio `transforms.json` folders (https://docs.nerf.studio/quickstart/data_conventions.html).

Camera-to-world matrices are OpenGL (x right, y up, camera looking down −z); intrinsics fl_x, fl_y, cx, cy,
w, h sit at the top level or per frame, for images of w × h pixels (a file of another size with the same aspect
ratio, such as a downscaled copy, scales them). `camera_model`: the perspective ones (OPENCV, PINHOLE,
SIMPLE_PINHOLE, SIMPLE_RADIAL, RADIAL, or none given) are read as pinhole cameras, and non-zero distortion
coefficients (k1..k4, p1, p2) get a warning, since the views are rendered without them; OPENCV_FISHEYE,
EQUIRECTANGULAR and other projections are refused. Optional per frame: `mask_path` (object mask) and
`depth_file_path` (z-depth, 16-bit PNG or .npy, times the top-level `depth_unit_scale_factor`); see masks_depth.py.

Where the object is: `center` names nerfstudio's own centring methods: "focus" (default), the point nearest to
every camera's optical axis, which is the object of a capture that circles it; "poses", the mean camera
position; "none", the world origin (as ns-process-data leaves it: COLMAP's arbitrary frame). Every camera must see
that point in front of it. `scale` maps world units to the field's (the object should fit in its box).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch

from common.files import read_json

from .. import cameras
from .masks_depth import DEFAULT_DEPTH_SCALE
from .scenes import Scene, View

_INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
_DISTORTION = ("k1", "k2", "k3", "k4", "p1", "p2")
PERSPECTIVE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL")
CENTERS = ("focus", "poses", "none")


def read_transforms(folder: Path, scale: float = 1.0, center: str = "focus") -> Scene:
    """One scene folder -> Scene; a clear error names the file and the field that is wrong."""
    if center not in CENTERS:
        raise ValueError(f"center: expected one of {CENTERS}, got {center!r}")
    path = folder / "transforms.json"
    meta = read_json(path, missing=f"{path}: no transforms.json in the scene folder")
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object with 'frames', got a {type(meta).__name__}")
    frames = meta.get("frames")
    if not isinstance(frames, list) or len(frames) < 2:
        raise ValueError(f"{path}: 'frames' must list at least two views")
    depth_scale = meta.get("depth_unit_scale_factor", DEFAULT_DEPTH_SCALE)
    if not isinstance(depth_scale, (int, float)) or not depth_scale > 0:
        raise ValueError(f"{path}: 'depth_unit_scale_factor' must be a positive number, got {depth_scale!r}")
    views, distorted = [], {}
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise ValueError(f"{path}: frame {i} must be a JSON object, got {frame!r}")
        model = frame.get("camera_model", meta.get("camera_model", "OPENCV"))
        if model not in PERSPECTIVE_MODELS:
            raise ValueError(
                f"{path}: frame {i} camera_model {model!r} is not a perspective camera (expected one of "
                f"{PERSPECTIVE_MODELS}); undistort the images to a pinhole camera first"
            )
        values = {key: _number(path, i, key, frame.get(key, meta.get(key))) for key in _INTRINSICS}
        for key in _DISTORTION:
            coefficient = frame.get(key, meta.get(key)) or 0.0
            if coefficient:
                distorted[key] = _number(path, i, key, coefficient)
        matrix = torch.tensor(frame.get("transform_matrix", []), dtype=torch.float64)
        if matrix.shape != (4, 4) or not torch.isfinite(matrix).all():
            raise ValueError(f"{path}: frame {i} 'transform_matrix' must be a finite 4x4 matrix")
        image = folder / str(frame.get("file_path", ""))
        if not image.is_file():
            raise FileNotFoundError(f"{path}: frame {i} image {image} does not exist")
        extras = {}
        for key, field in (("mask_path", "mask"), ("depth_file_path", "depth")):
            if frame.get(key) is not None:
                extras[field] = folder / frame[key]
                if not extras[field].is_file():
                    raise FileNotFoundError(f"{path}: frame {i} {key} {extras[field]} does not exist")
        views.append(
            View(
                image,
                cameras.opengl_to_opencv(matrix).float(),
                values["fl_x"],
                values["fl_y"],
                values["cx"],
                values["cy"],
                int(values["w"]),
                int(values["h"]),
                depth_scale=float(depth_scale),
                **extras,
            )
        )
    if distorted:
        coefficients = ", ".join(f"{key}={value:g}" for key, value in distorted.items())
        warnings.warn(
            f"{path}: lens distortion ({coefficients}) is left out: the views are rendered as pinhole cameras; "
            "undistort the images (e.g. COLMAP's image_undistorter) for exact geometry",
            stacklevel=2,
        )
    return Scene(folder.name, tuple(views), _object_centre(path, views, center), scale)


def _number(path: Path, frame: int, key: str, value) -> float:
    """A frame's intrinsic or distortion value as a float; a clear error for a missing, non-numeric or
    impossible one."""
    if value is None:
        raise ValueError(f"{path}: frame {frame} has no '{key}' (neither per frame nor at the top level)")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{path}: frame {frame} '{key}' must be a finite number, got {value!r}")
    if key in ("fl_x", "fl_y", "w", "h") and value <= 0:
        raise ValueError(f"{path}: frame {frame} '{key}' must be positive, got {value!r}")
    return float(value)


def _object_centre(path: Path, views: list[View], center: str) -> torch.Tensor:
    """The world point the object sits at, by `center`'s method; every camera must see it in front of it."""
    poses = torch.stack([view.c2w for view in views]).double()
    if center == "focus":
        point = cameras.nearest_point_to_axes(poses)
    elif center == "poses":
        point = poses[:, :3, 3].mean(0)
    else:
        point = torch.zeros(3, dtype=torch.float64)
    depths = (cameras.invert_pose(poses) @ torch.cat([point, point.new_ones(1)]))[:, 2]
    behind = [i for i, depth in enumerate(depths.tolist()) if not depth > 0]
    if behind:
        raise ValueError(
            f"{path}: the object centre ({center!r}: {[round(x, 4) for x in point.tolist()]}) is not in front of "
            f"the cameras of frames {behind[:5]}; an object-centric capture is needed (cameras around the object, "
            "looking at it)"
        )
    return point.float()


def find_scenes(root: str | Path, scale: float = 1.0, center: str = "focus") -> list[Scene]:
    """Every folder under `root` (itself included) that holds a transforms.json, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root: {root} is not a folder")
    folders = sorted({p.parent for p in root.rglob("transforms.json")})
    if not folders:
        raise FileNotFoundError(f"root: no transforms.json under {root}")
    return [read_transforms(folder, scale, center) for folder in folders]
