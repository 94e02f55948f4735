"""Writers for the render CLI: PNG/GIF/MP4 frames, colour-mapped depth, meshes (marching cubes over a density
grid), point clouds and nerfstudio datasets.

World frame of meshes, point clouds and transforms.json: the object's centre is the origin, x right, y up,
z towards the input camera (the input camera's OpenGL frame moved to the object: what mesh viewers and
nerfstudio expect). WORLD_FROM_FIELD maps the field's frame (OpenCV axes, object at the origin) to it.
"""

from __future__ import annotations

import io
import json
import math
import struct
from fractions import Fraction
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import cameras

WORLD_FROM_FIELD = np.diag([1.0, -1.0, -1.0])  # a half turn about x: y down, z away -> y up, z towards
# A pixel shows the object where its ray's accumulated opacity reaches this (the silhouette IoU's threshold, too);
# elsewhere depth/NNN.png draws background and --points back-projects nothing.
OBJECT_OPACITY = 0.5
DEPTH_BACKGROUND = (255, 255, 255)  # the colour of background pixels in depth/NNN.png
# The mesh keeps its connected parts with at least this share of the largest part's triangles (specks go).
KEEP_PART_FRACTION = 0.1


def world_from_camera(distance: float) -> np.ndarray:
    """4×4 map from the input camera's OpenCV frame (object at (0, 0, distance)) to the world frame."""
    out = np.eye(4)
    out[:3, :3] = WORLD_FROM_FIELD
    out[:3, 3] = WORLD_FROM_FIELD @ np.array([0.0, 0.0, -distance])
    return out


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def object_pixels(opacity: np.ndarray) -> np.ndarray:
    """Where rendered opacity [...] shows the object (at least OBJECT_OPACITY)."""
    return opacity >= OBJECT_OPACITY


def colour_depth(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Depth maps [N, H, W] -> uint8 [N, H, W, 3] on one scale over the valid (object) pixels of all views, so
    views compare (near red, far blue); other pixels are drawn in DEPTH_BACKGROUND."""
    from matplotlib import colormaps

    values = depth[valid] if valid.any() else depth
    lo, hi = float(values.min()), float(values.max())
    coloured = to_uint8(colormaps["turbo_r"]((depth - lo) / max(hi - lo, 1e-8))[..., :3])
    coloured[~valid] = DEPTH_BACKGROUND
    return coloured


def mp4_available() -> bool:
    return find_spec("av") is not None


def gif_bytes(frames: np.ndarray, seconds: float) -> bytes:
    """uint8 frames [N, H, W, 3] -> a looping GIF lasting `seconds` per loop."""
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    duration = max(20, round(1000 * seconds / len(images)))
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return buffer.getvalue()


def write_mp4(path: Path, frames: np.ndarray, seconds: float) -> None:
    """uint8 frames [N, H, W, 3] -> H.264 MP4 through PyAV (frames padded to even sizes, as yuv420p needs)."""
    import av

    frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)), mode="edge")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(len(frames), 1) / Fraction(seconds).limit_denominator())
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def iso_level(grid: np.ndarray, field_resolution: int, bound: float) -> tuple[float | None, str | None]:
    """The density at which one field cell is half opaque (ln 2 / cell width), or, when the grid never crosses
    it, half-way between the grid's min and max; None when the grid is constant. Returns (level, warning)."""
    level = math.log(2.0) * field_resolution / (2.0 * bound)
    lo, hi = float(grid.min()), float(grid.max())
    if lo < level < hi:
        return level, None
    if hi - lo < 1e-6 * max(1.0, abs(hi)):
        return None, f"the density is constant ({lo:.3g}): no surface, no mesh written"
    middle = 0.5 * (lo + hi)
    return middle, (
        f"the density ({lo:.3g}..{hi:.3g}) never crosses {level:.3g} (a field cell half opaque); "
        f"meshing at {middle:.3g}, half-way between its min and max"
    )


def marching_cubes(grid: np.ndarray, level: float, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """Iso-surface of a grid [z, y, x] spanning [-bound, bound]³ (Open3D's flying edges, a marching cubes
    variant) -> vertices [V, 3] (x, y, z, same frame) and triangles [T, 3], wound outwards where the
    density is higher inside."""
    import open3d as o3d

    mesh = o3d.t.geometry.TriangleMesh.create_isosurfaces(
        o3d.core.Tensor(np.ascontiguousarray(grid, np.float32)), [level]
    )
    if "positions" not in mesh.vertex or mesh.triangle.indices.shape[0] == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    step = 2.0 * bound / (grid.shape[0] - 1)
    vertices = mesh.vertex.positions.numpy() * step - bound
    return vertices.astype(np.float32), mesh.triangle.indices.numpy().astype(np.int64)


def object_parts(
    vertices: np.ndarray, triangles: np.ndarray, bound: float, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """The object alone in a marching-cubes mesh: triangles with a corner within `margin` of the box's faces
    (density the field piles up against its bounds) are dropped, then the connected parts with at least
    KEEP_PART_FRACTION of the largest part's triangles are kept (floating specks go). Unused vertices are
    removed and the triangles renumbered."""
    inside = (np.abs(vertices) < bound - margin).all(axis=1)
    triangles = triangles[inside[triangles].all(axis=1)]
    if len(triangles):
        part = connected_parts(vertices, triangles)
        sizes = np.bincount(part)
        triangles = triangles[sizes[part] >= KEEP_PART_FRACTION * sizes.max()]
    used = np.unique(triangles)
    renumber = np.zeros(len(vertices), np.int64)
    renumber[used] = np.arange(len(used))
    return vertices[used], renumber[triangles]


def connected_parts(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Index of the connected part (triangles sharing an edge) of each triangle [T], by Open3D."""
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vertices.astype(np.float64)), o3d.utility.Vector3iVector(triangles.astype(np.int32))
    )
    return np.asarray(mesh.cluster_connected_triangles()[0], np.int64)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals."""
    corners = vertices[triangles]
    face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def write_mesh(path: Path, vertices: np.ndarray, triangles: np.ndarray, colours: np.ndarray) -> None:
    """PLY or OBJ through Open3D; GLB written here (Open3D's GLB embeds a data URI that Assimp, and so Open3D
    itself, cannot read back)."""
    normals = vertex_normals(vertices, triangles)
    if path.suffix == ".glb":
        path.write_bytes(glb_bytes(vertices, normals, triangles, colours))
        return
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vertices.astype(np.float64)), o3d.utility.Vector3iVector(triangles.astype(np.int32))
    )
    mesh.vertex_colors = o3d.utility.Vector3dVector(colours.astype(np.float64))
    mesh.vertex_normals = o3d.utility.Vector3dVector(normals.astype(np.float64))
    if not o3d.io.write_triangle_mesh(str(path), mesh, write_ascii=False):
        raise OSError(f"cannot write {path}")


def glb_bytes(vertices: np.ndarray, normals: np.ndarray, triangles: np.ndarray, colours: np.ndarray) -> bytes:
    """A glTF 2.0 binary with one triangle mesh: POSITION, NORMAL, COLOR_0 (glTF colours are linear, ours are
    sRGB) and uint32 indices."""
    linear = np.where(colours <= 0.04045, colours / 12.92, ((colours + 0.055) / 1.055) ** 2.4)
    arrays = [a.astype(np.float32).tobytes() for a in (vertices, normals, linear)]
    arrays.append(triangles.astype(np.uint32).tobytes())
    views, offset = [], 0
    for data in arrays:
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data)})
        offset += len(data)  # every array is a multiple of 4 bytes long
    count = len(vertices)
    accessors = [
        {
            "bufferView": 0,
            "componentType": 5126,
            "count": count,
            "type": "VEC3",
            "min": vertices.min(0).tolist(),
            "max": vertices.max(0).tolist(),
        },
        {"bufferView": 1, "componentType": 5126, "count": count, "type": "VEC3"},
        {"bufferView": 2, "componentType": 5126, "count": count, "type": "VEC3"},
        {"bufferView": 3, "componentType": 5125, "count": triangles.size, "type": "SCALAR"},
    ]
    document = {
        "asset": {"version": "2.0", "generator": "lavis3d nvs.render"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "NORMAL": 1, "COLOR_0": 2}, "indices": 3}]}],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": offset}],
    }
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    binary = b"".join(arrays)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (
        struct.pack("<4sII", b"glTF", 2, total)
        + struct.pack("<I4s", len(text), b"JSON")
        + text
        + struct.pack("<I4s", len(binary), b"BIN\x00")
        + binary
    )


def write_points(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colours.astype(np.float64))
    if not o3d.io.write_point_cloud(str(path), cloud, write_ascii=False):
        raise OSError(f"cannot write {path}")


def backproject(depth: np.ndarray, rgb: np.ndarray, poses: np.ndarray, intrinsics: dict) -> tuple[np.ndarray, ...]:
    """Depth maps [N, H, W] of OpenCV cameras poses [N, 4, 4] -> points [P, 3] in the same frame as the poses
    and their colours [P, 3]."""
    n, h, w = depth.shape
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    x = (u - intrinsics["cx"]) / intrinsics["fx"]
    y = (v - intrinsics["cy"]) / intrinsics["fy"]
    camera = np.stack([x[None] * depth, y[None] * depth, depth], axis=-1).reshape(n, -1, 3)
    points = np.einsum("nij,npj->npi", poses[:, :3, :3], camera) + poses[:, None, :3, 3]
    return points.reshape(-1, 3), rgb.reshape(-1, 3)


def nerfstudio_transforms(poses_world: np.ndarray, intrinsics: dict, ply: str | None) -> dict:
    """transforms.json for OpenCV camera-to-world poses [N, 4, 4] in the world frame (nerfstudio wants OpenGL
    camera axes, so they are flipped as nvs.data.nerfstudio reads them back)."""
    opengl = cameras.opencv_to_opengl(torch.from_numpy(poses_world)).numpy()
    meta = {
        "camera_model": "OPENCV",
        "fl_x": intrinsics["fx"],
        "fl_y": intrinsics["fy"],
        "cx": intrinsics["cx"],
        "cy": intrinsics["cy"],
        "w": intrinsics["width"],
        "h": intrinsics["height"],
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "frames": [
            {"file_path": f"images/{i:03d}.png", "transform_matrix": matrix.tolist()} for i, matrix in enumerate(opengl)
        ],
    }
    if ply is not None:
        meta["ply_file_path"] = ply
    return meta
