"""Multi-view scenes as NViST trains on them: one input view, the other views as targets, every camera
relative to the input camera (OpenCV), and the object's distance along the input camera's axis.

A scene is a list of views (image path, OpenCV camera-to-world, intrinsics) and the world point the object
sits at. Loaders for each data format (nerfstudio, MVImgNet/COLMAP, CO3D) build Scene lists; SceneDataset
turns a scene into tensors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .. import cameras
from ..images import load_rgb


@dataclass(frozen=True)
class View:
    image: Path
    c2w: Tensor  # [4, 4] OpenCV camera-to-world
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int


@dataclass(frozen=True)
class Scene:
    name: str
    views: tuple[View, ...]
    center: Tensor  # [3] world position of the object
    scale: float = 1.0  # world units -> field units (the object should fit in the field's box)


def _resize_view(
    image: Tensor, view: View, height: int, width: int
) -> tuple[Tensor, tuple[float, float, float, float]]:
    """Resize (aspect kept) and centre-crop an image, moving the intrinsics with it."""
    _, h, w = image.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    resized = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)[0]
    top, left = (new_h - height) // 2, (new_w - width) // 2
    sx, sy = new_w / w, new_h / h
    intrinsics = (view.fx * sx, view.fy * sy, view.cx * sx - left, view.cy * sy - top)
    return resized[:, top : top + height, left : left + width].clamp(0, 1), intrinsics


class SceneDataset(Dataset):
    """Item = one scene: the input view at the encoder's size with its condition, and `targets` other views
    (all views when fewer) at the render size, posed relative to the input camera.

    input_view: "random" (training) or an index (validation: a fixed input, the rest are novel views).
    """

    def __init__(
        self,
        scenes: list[Scene],
        input_size: tuple[int, int],
        target_size: tuple[int, int],
        targets: int = 4,
        input_view: str | int = "random",
        include_input: bool = True,
    ):
        if not scenes:
            raise ValueError("scenes: no scenes found")
        self.scenes, self.input_size, self.target_size = scenes, input_size, target_size
        self.targets, self.input_view, self.include_input = targets, input_view, include_input

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        scene = self.scenes[index]
        # training draws from torch's generator, which seed_everything seeds and DataLoader re-seeds per worker
        # (an unseeded random.Random() made runs with the same seed differ)
        seed = int(torch.randint(2**62, ())) if self.input_view == "random" else index
        rng = random.Random(seed)
        n = len(scene.views)
        first = rng.randrange(n) if self.input_view == "random" else int(self.input_view) % n
        others = [i for i in range(n) if i != first]
        rng.shuffle(others)
        chosen = ([first] if self.include_input else []) + others
        chosen = chosen[: max(1, self.targets)]
        reference = scene.views[first]

        image, (fx, fy, cx, cy) = _resize_view(load_rgb(reference.image), reference, *self.input_size)
        poses = torch.stack([scene.views[i].c2w for i in chosen]).float()
        poses[:, :3, 3] = (poses[:, :3, 3] - scene.center) * scene.scale
        ref_pose = reference.c2w.clone().float()
        ref_pose[:3, 3] = (ref_pose[:3, 3] - scene.center) * scene.scale
        relative = cameras.relative_to(ref_pose, poses)
        # the object (the world origin after centring) seen from the input camera: its depth is the distance
        distance = (cameras.invert_pose(ref_pose) @ torch.tensor([0.0, 0.0, 0.0, 1.0]))[2]

        target_images, intrinsics = [], []
        for i in chosen:
            view = scene.views[i]
            img, k = _resize_view(load_rgb(view.image), view, *self.target_size)
            target_images.append(img)
            intrinsics.append(torch.tensor(k))
        return {
            "image": image,
            "condition": torch.tensor([float(distance), fy / self.input_size[0]]),
            "poses": relative,
            "intrinsics": torch.stack(intrinsics).float(),
            "targets": torch.stack(target_images),
            "target_is_input": torch.tensor([i == first for i in chosen]),
        }
