"""MVImgNet scenes: `<category>/<scene>/images/*.jpg` with a COLMAP model in `<scene>/sparse/0/`.

NViST's normalisation: the object centre is the median of the sparse points and the scale puts 90% of the
points within 0.6 of it (inside the field's [-0.8, 0.8]³ box); every camera is then relative to the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..cameras import invert_pose
from .colmap import read_model, world_to_camera
from .scenes import Scene, View

OBJECT_RADIUS = 0.6


def read_scene(folder: Path) -> Scene:
    cameras, images, points = read_model(folder / "sparse" / "0")
    if len(images) < 2:
        raise ValueError(f"{folder}: the COLMAP model registers {len(images)} images; at least two are needed")
    if len(points) == 0:
        raise ValueError(f"{folder}: the COLMAP model has no 3-D points to centre and scale the scene with")
    centre = np.median(points, axis=0)
    radius = np.quantile(np.linalg.norm(points - centre, axis=1), 0.9)
    views = []
    for image in sorted(images.values(), key=lambda im: im.name):
        if image.camera_id not in cameras:
            raise ValueError(f"{folder}: image {image.name} uses camera {image.camera_id}, which the model lacks")
        camera = cameras[image.camera_id]
        path = folder / "images" / image.name
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: image {path} listed by the COLMAP model does not exist")
        try:
            fx, fy, cx, cy = camera.intrinsics
        except ValueError as error:
            raise ValueError(f"{folder}: image {image.name}: {error}") from None
        c2w = invert_pose(world_to_camera(image)).float()
        views.append(View(path, c2w, fx, fy, cx, cy, camera.width, camera.height))
    return Scene(
        folder.name, tuple(views), torch.tensor(centre, dtype=torch.float32), float(OBJECT_RADIUS / max(radius, 1e-6))
    )


def find_scenes(root: str | Path) -> list[Scene]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root: {root} is not a folder")
    folders = sorted({p.parent.parent for p in root.rglob("sparse/0")})
    if not folders:
        raise FileNotFoundError(f"root: no <scene>/sparse/0 COLMAP models under {root}")
    return [read_scene(folder) for folder in folders]
