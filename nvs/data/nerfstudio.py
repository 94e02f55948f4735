"""nerfstudio `transforms.json` folders (https://docs.nerf.studio/quickstart/data_conventions.html).

Camera-to-world matrices are OpenGL (x right, y up, camera looking down −z); intrinsics fl_x, fl_y, cx, cy,
w, h sit at the top level or per frame. Lens distortion is not modelled. Optional per frame: `mask_path` (object
mask) and `depth_file_path` (z-depth, 16-bit PNG or .npy, times the top-level `depth_unit_scale_factor`); see
masks_depth.py. Neither is required. The object is assumed near the
world origin (nerfstudio's processing centres object captures there); `scale` maps world units to the
field's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.files import read_json

from .. import cameras
from .masks_depth import DEFAULT_DEPTH_SCALE
from .scenes import Scene, View

_INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def read_transforms(folder: Path, scale: float = 1.0) -> Scene:
    """One scene folder -> Scene; a clear error names the file and the field that is wrong."""
    path = folder / "transforms.json"
    meta = read_json(path, missing=f"{path}: no transforms.json in the scene folder")
    frames = meta.get("frames")
    if not isinstance(frames, list) or len(frames) < 2:
        raise ValueError(f"{path}: 'frames' must list at least two views")
    depth_scale = meta.get("depth_unit_scale_factor", DEFAULT_DEPTH_SCALE)
    if not isinstance(depth_scale, (int, float)) or not depth_scale > 0:
        raise ValueError(f"{path}: 'depth_unit_scale_factor' must be a positive number, got {depth_scale!r}")
    views = []
    for i, frame in enumerate(frames):
        values = {}
        for key in _INTRINSICS:
            value = frame.get(key, meta.get(key))
            if value is None:
                raise ValueError(f"{path}: frame {i} has no '{key}' (neither per frame nor at the top level)")
            values[key] = float(value)
        matrix = torch.tensor(frame.get("transform_matrix", []), dtype=torch.float64)
        if matrix.shape != (4, 4) or not torch.isfinite(matrix).all():
            raise ValueError(f"{path}: frame {i} 'transform_matrix' must be a finite 4x4 matrix")
        image = folder / frame.get("file_path", "")
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
    return Scene(folder.name, tuple(views), torch.zeros(3), scale)


def find_scenes(root: str | Path, scale: float = 1.0) -> list[Scene]:
    """Every folder under `root` (itself included) that holds a transforms.json, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root: {root} is not a folder")
    folders = sorted({p.parent for p in root.rglob("transforms.json")})
    if not folders:
        raise FileNotFoundError(f"root: no transforms.json under {root}")
    return [read_transforms(folder, scale) for folder in folders]
