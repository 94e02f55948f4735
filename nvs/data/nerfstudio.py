"""nerfstudio `transforms.json` folders (https://docs.nerf.studio/quickstart/data_conventions.html).

Camera-to-world matrices are OpenGL (x right, y up, camera looking down −z); intrinsics fl_x, fl_y, cx, cy,
w, h sit at the top level or per frame. Lens distortion is not modelled. The object is assumed near the
world origin (nerfstudio's processing centres object captures there); `scale` maps world units to the
field's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.files import read_json

from .. import cameras
from .scenes import Scene, View

_INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def read_transforms(folder: Path, scale: float = 1.0) -> Scene:
    """One scene folder -> Scene; a clear error names the file and the field that is wrong."""
    path = folder / "transforms.json"
    meta = read_json(path, missing=f"{path}: no transforms.json in the scene folder")
    frames = meta.get("frames")
    if not isinstance(frames, list) or len(frames) < 2:
        raise ValueError(f"{path}: 'frames' must list at least two views")
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
