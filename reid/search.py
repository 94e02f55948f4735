"""python -m reid.search --query IMG --gallery DIR [--checkpoint PATH] [--topk K] [--out PNG] [--rerank]

Ranks the images under DIR by their distance to the query's embedding and writes the ranking as an image
grid: the query, then the top K gallery images with their rank, distance and camera. Where file names follow
`<pid>_c<cam>_...` (Market-1501 and our synthetic sets), tiles are framed green when the identity matches the
query's and red when it does not.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
_NAME = re.compile(r"^(-?\d+)_c(\d+)")
TILE = (64, 128)  # width, height of one tile in the grid


@dataclass
class Match:
    path: Path
    distance: float
    pid: int | None
    camera: int | None


def identity(path: Path) -> tuple[int | None, int | None]:
    """(pid, camera) from a `<pid>_c<cam>_...` name, or (None, None)."""
    m = _NAME.match(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def gallery_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ValueError(f"--gallery {folder}: not a directory")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"--gallery {folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths


def rank(
    model,
    query: Path,
    gallery: list[Path],
    *,
    topk: int,
    rerank: bool,
    batch_size: int = 64,
    gallery_features: torch.Tensor | None = None,
) -> list[Match]:
    """The top-k gallery images for the query, nearest first (euclidean distance of L2-normalised embeddings).
    `gallery_features`: the gallery's embeddings when already computed (a fixed gallery searched many times)."""
    if gallery_features is not None and len(gallery_features) != len(gallery):
        raise ValueError(f"gallery_features: {len(gallery_features)} rows for {len(gallery)} gallery images")
    with torch.no_grad():
        q = model.embed([query])
        g = model.embed(gallery, batch_size=batch_size) if gallery_features is None else gallery_features
        distance = torch.cdist(q, g)
        if rerank:
            from .re_ranking import re_ranking

            distance = torch.as_tensor(
                re_ranking(distance.numpy(), torch.cdist(q, q).numpy(), torch.cdist(g, g).numpy())
            )
    order = distance[0].argsort()[:topk]
    return [Match(gallery[i], float(distance[0, i]), *identity(gallery[i])) for i in order.tolist()]


def _tile(path: Path, caption: str, frame: tuple[int, int, int] | None) -> Image.Image:
    with Image.open(path) as image:
        picture = ImageOps.exif_transpose(image).convert("RGB").resize(TILE)
    tile = Image.new("RGB", (TILE[0] + 8, TILE[1] + 30), (255, 255, 255))
    if frame:
        tile.paste(frame, (0, 0, TILE[0] + 8, TILE[1] + 8))
    tile.paste(picture, (4, 4))
    ImageDraw.Draw(tile).multiline_text((3, TILE[1] + 9), caption, fill=(0, 0, 0), spacing=1)
    return tile


def write_grid(query: Path, matches: list[Match], out: Path) -> Path:
    """Query tile, a gap, then the ranked matches in one row; written atomically as PNG."""
    q_pid, q_cam = identity(query)
    tiles = [_tile(query, f"query\ncam {q_cam if q_cam is not None else '?'}", (60, 60, 220))]
    for i, m in enumerate(matches, 1):
        frame = None if q_pid is None or m.pid is None else (40, 170, 40) if m.pid == q_pid else (210, 40, 40)
        cam = m.camera if m.camera is not None else "?"
        tiles.append(_tile(m.path, f"#{i} d={m.distance:.3f}\ncam {cam}", frame))
    w, h = tiles[0].size
    grid = Image.new("RGB", (w * len(tiles) + 12, h), (255, 255, 255))
    for i, tile in enumerate(tiles):
        grid.paste(tile, (i * w + (12 if i else 0), 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    grid.save(tmp, format="PNG")
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reid.search", description=__doc__.split("\n\n")[1])
    parser.add_argument("--query", type=Path, required=True, help="the query image")
    parser.add_argument("--gallery", type=Path, required=True, help="folder of gallery images (searched recursively)")
    parser.add_argument("--checkpoint", type=Path, help="model (.safetensors + .json); default: the shipped model")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--out", type=Path, help="PNG to write (default: search_<query stem>.png)")
    parser.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1 20, k2 6, λ 0.3)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        if args.topk < 1:
            raise ValueError(f"--topk must be ≥ 1, got {args.topk}")
        if not args.query.is_file():
            raise ValueError(f"--query {args.query}: no such file")
        gallery = gallery_images(args.gallery)
        from . import load_model

        model = load_model(args.checkpoint, device=args.device)
        matches = rank(model, args.query, gallery, topk=min(args.topk, len(gallery)), rerank=args.rerank)
        out = write_grid(args.query, matches, args.out or Path(f"search_{args.query.stem}.png"))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for i, m in enumerate(matches, 1):
        print(f"{i:3d}  {m.distance:.4f}  {m.path}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
