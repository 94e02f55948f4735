"""python -m reid.search --query IMG --gallery DIR [--checkpoint PATH] [--topk K] [--out PNG] [--rerank]

Ranks the images under DIR by their distance to the query's embedding and writes the ranking as an image
grid: the query, then the top K gallery images with their rank, distance and camera, ten to a row. Where file
names follow `<pid>_c<cam>_...` (Market-1501 and our synthetic sets), tiles are framed green when the identity
matches the query's and red when it does not. Gallery files that cannot be read are skipped with a warning.

The command parses its arguments before importing torch and the model, so --help answers at once.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.cli import OneLineParser
from common.files import write_atomic

if TYPE_CHECKING:
    import torch
    from PIL import Image

PROG = "python -m reid.search"
SCRIPT = "reid-search"  # the console script's name ([project.scripts] in pyproject.toml)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
_NAME = re.compile(r"^(-?\d+)_c(\d+)")
TILE = (64, 128)  # width, height of one tile in the grid
COLUMNS = 10  # matches per row of the grid
INTERRUPTED = 130  # the shell's exit code for a command stopped by Ctrl-C (128 + SIGINT)


class SkippedImageWarning(UserWarning):
    """A gallery file that could not be read and was left out of the ranking."""


@dataclass
class Match:
    path: Path
    distance: float
    pid: int | None
    camera: int | None


def identity(path: Path) -> tuple[int | None, int | None]:
    """(pid, camera) from a `<pid>_c<cam>_...` name, or (None, None)."""
    m = _NAME.match(Path(path).name)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def gallery_images(folder: Path, label: str = "gallery") -> list[Path]:
    """The image files under `folder` (recursively, by suffix), sorted; ValueError (starting with `label`) when
    there are none."""
    folder = Path(folder)
    if not folder.exists():
        raise ValueError(f"{label} {folder}: no such folder")
    if not folder.is_dir():
        raise ValueError(f"{label} {folder}: not a directory")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"{label} {folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths


def open_image(path: Path) -> Image.Image:
    """The image as 8-bit RGB, read as training reads it (`reid.data.read_image`: EXIF orientation applied,
    16-bit scaled), or ValueError with a one-line reason (no such file, a folder, not an image)."""
    from .data.datasets import read_image

    path = Path(path)
    if path.is_dir():
        raise ValueError("is a folder, not an image")
    if not path.exists():
        raise ValueError("no such file")
    try:
        return read_image(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"not a readable image ({error.__cause__ or error})") from error


def embed_gallery(
    model, paths: Sequence[Path], *, batch_size: int = 64, progress: bool = False
) -> tuple[list[Path], torch.Tensor]:
    """Embeddings of the readable gallery images, a batch at a time, and those images' paths. Each unreadable
    file is left out with a SkippedImageWarning naming it."""
    import torch
    from tqdm import tqdm

    kept, features = [], []
    with tqdm(total=len(paths), unit="image", desc="embedding", file=sys.stderr, disable=not progress) as bar:
        for start in range(0, len(paths), batch_size):
            images = []
            for path in paths[start : start + batch_size]:
                try:
                    images.append(open_image(path))
                    kept.append(Path(path))
                except ValueError as error:
                    warnings.warn(f"{path}: {error}; skipped", SkippedImageWarning, stacklevel=2)
            if images:
                features.append(model.embed(images, batch_size=batch_size))
            bar.update(min(batch_size, len(paths) - start))
    if not features:
        return kept, torch.zeros(0, model.feature_dim)
    return kept, torch.cat(features)


def rank(
    model,
    query: str | Path,
    gallery: str | Path | Sequence[str | Path],
    *,
    topk: int = 10,
    rerank: bool = False,
    batch_size: int = 64,
    gallery_features: torch.Tensor | None = None,
    progress: bool = False,
) -> list[Match]:
    """The top-k gallery images for the query, nearest first (euclidean distance of L2-normalised embeddings).
    `gallery`: a folder (searched recursively) or a list of image paths; unreadable ones are skipped with a
    SkippedImageWarning. Files are read as training reads them (`reid.data.read_image`: EXIF orientation applied,
    16-bit scaled). `rerank`: k-reciprocal re-ranking (k1 20, k2 6, λ 0.3); it needs a gallery image whose
    embedding differs from the query's, else a ValueError says so. `gallery_features`: the gallery's embeddings
    when already computed (a fixed gallery searched many times). `progress`: a bar on stderr while the gallery is
    embedded."""
    import torch

    if topk < 1:
        raise ValueError(f"topk must be at least 1, got {topk}")
    gallery = gallery_images(Path(gallery)) if isinstance(gallery, (str, Path)) else [Path(p) for p in gallery]
    if gallery_features is not None and len(gallery_features) != len(gallery):
        raise ValueError(f"gallery_features: {len(gallery_features)} rows for {len(gallery)} gallery images")
    try:
        query_image = open_image(Path(query))
    except ValueError as error:
        raise ValueError(f"query {query}: {error}") from error
    with torch.no_grad():
        q = model.embed([query_image])
        if gallery_features is None:
            gallery, g = embed_gallery(model, gallery, batch_size=batch_size, progress=progress)
            if not gallery:
                raise ValueError("no gallery image could be read")
        else:
            g = gallery_features.to(q.device)
        distance = torch.cdist(q, g)
        if rerank:
            from .re_ranking import re_ranking

            q_q, g_g = torch.cdist(q, q).cpu().numpy(), torch.cdist(g, g).cpu().numpy()
            try:
                distance = torch.as_tensor(re_ranking(distance.cpu().numpy(), q_q, g_g))
            except ValueError as error:
                if "nonzero distance" not in str(error):  # the one the caller can cause: every embedding the same
                    raise
                raise ValueError(
                    f"rerank: re-ranking needs a gallery image that differs from the query, but the query and all "
                    f"{len(gallery)} gallery image(s) have the same embedding; add gallery images of other views or "
                    "people, or rank without re-ranking (rerank=False; without --rerank on the command line)"
                ) from error
    order = distance[0].argsort()[:topk]
    return [Match(gallery[i], float(distance[0, i]), *identity(gallery[i])) for i in order.tolist()]


def _tile(path: Path, caption: str, frame: tuple[int, int, int] | None) -> Image.Image:
    from PIL import Image, ImageDraw

    picture = open_image(path).resize(TILE)
    tile = Image.new("RGB", (TILE[0] + 8, TILE[1] + 30), (255, 255, 255))
    if frame:
        tile.paste(frame, (0, 0, TILE[0] + 8, TILE[1] + 8))
    tile.paste(picture, (4, 4))
    ImageDraw.Draw(tile).multiline_text((3, TILE[1] + 9), caption, fill=(0, 0, 0), spacing=1)
    return tile


def write_grid(query: Path, matches: list[Match], out: Path, columns: int = COLUMNS) -> Path:
    """The query tile, a gap, then the ranked matches `columns` to a row (rank 1 top left); written atomically
    as PNG."""
    from PIL import Image

    q_pid, q_cam = identity(query)
    query_tile = _tile(query, f"query\ncam {q_cam if q_cam is not None else '?'}", (60, 60, 220))
    tiles = []
    for i, m in enumerate(matches, 1):
        frame = None if q_pid is None or m.pid is None else (40, 170, 40) if m.pid == q_pid else (210, 40, 40)
        cam = m.camera if m.camera is not None else "?"
        tiles.append(_tile(m.path, f"#{i} d={m.distance:.3f}\ncam {cam}", frame))
    w, h = query_tile.size
    rows = max(1, -(-len(tiles) // columns))
    grid = Image.new("RGB", (w * (1 + min(len(tiles), columns)) + 12, h * rows), (255, 255, 255))
    grid.paste(query_tile, (0, 0))
    for i, tile in enumerate(tiles):
        row, column = divmod(i, columns)
        grid.paste(tile, (w * (1 + column) + 12, h * row))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda tmp: grid.save(tmp, format="PNG"))
    return out


def prog() -> str:
    """The name the user typed: the console script's, or `python -m reid.search`."""
    return SCRIPT if Path(sys.argv[0]).name == SCRIPT else PROG


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=prog(), description=__doc__.split("\n\n")[1])
    p.add_argument("--query", type=Path, required=True, help="the query image (a person crop)")
    p.add_argument("--gallery", type=Path, required=True, help="folder of gallery images (searched recursively)")
    p.add_argument("--checkpoint", type=Path, help="model (.safetensors + .json); default: the shipped model")
    p.add_argument("--topk", type=int, default=10, help="how many of the nearest gallery images to show (default: 10)")
    p.add_argument("--out", type=Path, help="PNG to write (default: search_<query stem>.png)")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1 20, k2 6, λ 0.3)")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="cpu",
        help="where the model runs: cpu, cuda, or auto (cuda when available) (default: cpu)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (it shows only on a terminal)")
    return p


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, in one line, or None (files are checked before any model loads)."""
    if args.topk < 1:
        return f"--topk must be at least 1, got {args.topk}"
    if args.query.is_dir():
        return f"--query {args.query}: is a folder, not an image (give one image file)"
    if not args.query.exists():
        return f"--query {args.query}: no such file"
    try:
        open_image(args.query)
    except ValueError as error:
        return f"--query {args.query}: {error}"
    if not args.gallery.exists():
        return f"--gallery {args.gallery}: no such folder"
    if not args.gallery.is_dir():
        return f"--gallery {args.gallery}: not a directory (give the folder that holds the gallery images)"
    if args.out is not None and args.out.is_dir():
        return f"--out {args.out}: is a folder; give the PNG file to write"
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "--device cuda: no CUDA device is available here"
    return None


def search(args: argparse.Namespace) -> tuple[list[Match], Path]:
    """Load the model, rank, draw; gallery files that cannot be read become one warning line each."""
    from . import load_model

    gallery = gallery_images(args.gallery, "--gallery")
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(args.checkpoint, device=device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedImageWarning)
        try:
            progress = not args.quiet and sys.stderr.isatty()
            matches = rank(model, args.query, gallery, topk=args.topk, rerank=args.rerank, progress=progress)
        finally:
            for warning in caught:
                if issubclass(warning.category, SkippedImageWarning):
                    print(f"{prog()}: warning: {warning.message}", file=sys.stderr)
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    out = write_grid(args.query, matches, args.out or Path(f"search_{args.query.stem}.png"))
    return matches, out


def main(argv: list[str] | None = None) -> int:
    """The command: 0 on success, 2 on a bad argument or input (nothing written), 130 on Ctrl-C."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        problem = check_args(args)
        if problem:
            print(f"{prog()}: error: {problem}", file=sys.stderr)
            return 2
        matches, out = search(args)
    except KeyboardInterrupt:
        print(f"{prog()}: interrupted: nothing written", file=sys.stderr)
        return INTERRUPTED
    except (ValueError, OSError) as error:
        print(f"{prog()}: error: {error}", file=sys.stderr)
        return 2
    print(f"{'rank':>4}  {'distance':>8}  {'person':>6}  {'camera':>6}  file")
    for i, m in enumerate(matches, 1):
        pid = "?" if m.pid is None else m.pid
        camera = "?" if m.camera is None else m.camera
        print(f"{i:4d}  {m.distance:8.4f}  {pid!s:>6}  {camera!s:>6}  {m.path}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
