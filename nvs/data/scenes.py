"""Multi-view scenes as NViST trains on them: one input view, the other views as targets, every camera
relative to the input camera (OpenCV), and the object's distance along the input camera's axis.

A scene is a list of views (image path, OpenCV camera-to-world, intrinsics, and optionally an object mask and a
depth map) and the world point the object sits at. Loaders for each data format (nerfstudio, MVImgNet/COLMAP,
CO3D) build Scene lists; SceneDataset turns a scene into tensors.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .. import cameras
from ..images import load_rgb
from .masks_depth import read_depth, read_mask


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
    mask: Path | None = None  # object mask (masks_depth.read_mask), when the dataset has one
    depth: Path | None = None  # z-depth map (masks_depth.read_depth), when the dataset has one
    depth_scale: float = 1e-3  # stored depth values -> world units


@dataclass(frozen=True)
class Scene:
    name: str
    views: tuple[View, ...]
    center: Tensor  # [3] world position of the object
    scale: float = 1.0  # world units -> field units (the object should fit in the field's box)


def _resize_crop(image: Tensor, height: int, width: int, mode: str = "bilinear") -> tuple[Tensor, tuple[float, ...]]:
    """Resize [C, h, w] (aspect kept) and centre-crop to height×width -> the result and (sx, sy, left, top), how
    pixel coordinates move. "nearest" keeps values unmixed (depth maps, whose 0 means "none")."""
    _, h, w = image.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    options = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
    image = F.interpolate(image[None], size=(new_h, new_w), mode=mode, **options)[0]
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return image[:, top : top + height, left : left + width], (new_w / w, new_h / h, left, top)


def read_view_image(path: Path) -> Tensor:
    """A view's image as [3, H, W] in 0..1, its pixel grid as stored: no EXIF rotation, since the camera was
    calibrated on the stored grid (COLMAP and nerfstudio read it so)."""
    return load_rgb(path, orient=False)


def file_intrinsics(view: View, height: int, width: int) -> tuple[float, float, float, float]:
    """The view's fx, fy, cx, cy for its image file's size: the camera's own when the file is view.width ×
    view.height, else scaled to the file (a downscaled copy, such as nerfstudio's images_2), provided the aspect
    ratio agrees to within a pixel's rounding."""
    if (width, height) == (view.width, view.height):
        return view.fx, view.fy, view.cx, view.cy
    sx, sy = width / view.width, height / view.height
    if abs(sx - sy) > 1.0 / min(width, height):
        raise ValueError(
            f"{view.image}: the file is {width}x{height} but its camera was calibrated at {view.width}x{view.height}, "
            "another aspect ratio (a rotated or cropped copy?)"
        )
    return cameras.scale_intrinsics(view.fx, view.fy, view.cx, view.cy, sx, sy)


def _resize_view(
    image: Tensor, view: View, height: int, width: int
) -> tuple[Tensor, tuple[float, float, float, float]]:
    """Resize (aspect kept) and centre-crop an image, moving the intrinsics with it."""
    fx, fy, cx, cy = file_intrinsics(view, *image.shape[1:])
    resized, (sx, sy, left, top) = _resize_crop(image, height, width)
    return resized.clamp(0, 1), (fx * sx, fy * sy, cx * sx - left, cy * sy - top)


def _view_mask(view: View, image_size: tuple[int, int], height: int, width: int) -> Tensor:
    """A view's object mask (0..1; bilinear, so edges become coverage fractions), resized and cropped like its image."""
    mask = torch.from_numpy(read_mask(view.mask, image_size))
    return _resize_crop(mask[None], height, width)[0][0].clamp(0, 1)


def _view_depth(view: View, image_size: tuple[int, int], height: int, width: int, scale: float) -> Tensor:
    """A view's z-depth in field units (nearest, so no depth mixes with the background's 0), resized and cropped."""
    depth = torch.from_numpy(read_depth(view.depth, view.depth_scale, image_size)) * scale
    return _resize_crop(depth[None], height, width, "nearest")[0][0]


class SceneDataset(Dataset):
    """Item = one scene: the input view at the encoder's size with its condition, and `targets` other views
    (all views when fewer) at the render size, posed relative to the input camera.

    input_view: "random" (training) or an index (validation: a fixed input, the rest are novel views).
    geometry: also return the targets' object masks and depth maps (`masks`, `depths` [V, H, W]) and the input
    view's mask at the target size (`input_mask` [H, W]), for scenes whose every view has both (evaluation).
    read: how an image path becomes a [3, H, W] float tensor (default `read_view_image`;
    `common.images.DecodedOnce(read_view_image)` decodes each file once). It must not be changed in place: the
    dataset never does.
    """

    def __init__(
        self,
        scenes: list[Scene],
        input_size: tuple[int, int],
        target_size: tuple[int, int],
        targets: int = 4,
        input_view: str | int = "random",
        include_input: bool = True,
        geometry: bool = False,
        read: Callable[[Path], Tensor] | None = None,
    ):
        if not scenes:
            raise ValueError("scenes: no scenes found")
        self.scenes, self.input_size, self.target_size = scenes, input_size, target_size
        self.targets, self.input_view, self.include_input = targets, input_view, include_input
        self.geometry = geometry
        self.read = read_view_image if read is None else read

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

        reference_rgb = self.read(reference.image)
        image, (fx, fy, cx, cy) = _resize_view(reference_rgb, reference, *self.input_size)
        poses = torch.stack([scene.views[i].c2w for i in chosen]).float()
        poses[:, :3, 3] = (poses[:, :3, 3] - scene.center) * scene.scale
        ref_pose = reference.c2w.clone().float()
        ref_pose[:3, 3] = (ref_pose[:3, 3] - scene.center) * scene.scale
        relative = cameras.relative_to(ref_pose, poses)
        # the object (the world origin after centring) seen from the input camera: its depth is the distance
        distance = (cameras.invert_pose(ref_pose) @ torch.tensor([0.0, 0.0, 0.0, 1.0]))[2]

        target_images, intrinsics, geometry = [], [], []
        with_geometry = self.geometry and all(v.mask is not None and v.depth is not None for v in scene.views)
        for i in chosen:
            view = scene.views[i]
            rgb = self.read(view.image)
            img, k = _resize_view(rgb, view, *self.target_size)
            target_images.append(img)
            intrinsics.append(torch.tensor(k))
            if with_geometry:
                size = tuple(rgb.shape[1:])
                geometry.append(
                    (_view_mask(view, size, *self.target_size), _view_depth(view, size, *self.target_size, scene.scale))
                )
        item = {
            "image": image,
            "condition": torch.tensor([float(distance), fy / self.input_size[0]]),
            "poses": relative,
            "intrinsics": torch.stack(intrinsics).float(),
            "targets": torch.stack(target_images),
            "target_is_input": torch.tensor([i == first for i in chosen]),
        }
        if with_geometry:
            item["masks"] = torch.stack([mask for mask, _ in geometry])
            item["depths"] = torch.stack([depth for _, depth in geometry])
            item["input_mask"] = _view_mask(reference, tuple(reference_rgb.shape[1:]), *self.target_size)
        return item
