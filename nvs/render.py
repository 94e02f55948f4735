"""Novel views, depth, an orbit video, a coloured mesh, a point cloud and a nerfstudio dataset from photos.

    python -m nvs.render photo.jpg [more.png ...] [--out renders] [--views 8] [--size 128] [--mesh ply] ...

Writes DIR/<stem>/ per photo: views/NNN.png, depth/NNN.png + depth.npy, orbit.gif|mp4, mesh.<ext>,
points.ply (--points), nerfstudio/ (transforms.json + images/) and summary.json. Each photo's folder appears
whole or not at all (written in a temporary folder, renamed at the end); a bad photo gets one line on stderr
and exit code 2 at the end, and the others are still rendered. Ctrl-C stops after keeping the finished photos
(exit code 130).

This module is the command line only: it parses its arguments into a RenderOptions (nvs/options.py) before
importing torch and the model (nvs/outputs.py), so --help and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common.cli import OneLineParser

from .errors import InputError
from .options import RenderOptions

PROG = "python -m nvs.render"
SCRIPT = "nvs-render"  # the console script's name ([project.scripts] in pyproject.toml)
INTERRUPTED = 130  # the shell's exit code for a command stopped by Ctrl-C (128 + SIGINT)


def prog() -> str:
    """The name the user typed: the console script's, or `python -m nvs.render`."""
    return SCRIPT if Path(sys.argv[0]).name == SCRIPT else PROG


def build_parser() -> OneLineParser:
    """The command's arguments: the photos, --out, and one option per RenderOptions field (its defaults)."""
    d = RenderOptions()
    p = OneLineParser(prog=prog(), description=__doc__.split("\n")[0])
    p.add_argument("images", nargs="+", type=Path, help="photos: JPEG, PNG, WebP, BMP, TIFF (any size)")
    p.add_argument("--out", type=Path, default=Path("renders"), help="output folder (default: renders)")
    p.add_argument(
        "--checkpoint", type=Path, default=d.checkpoint, help="model .safetensors (default: the shipped model)"
    )
    p.add_argument(
        "--views", type=int, default=d.views, help="views on the orbit, view 0 at the input camera (default: 8)"
    )
    p.add_argument(
        "--elevation",
        type=float,
        default=d.elevation,
        help="orbit elevation, degrees: -90 (below) to 90 (above) (default: 0)",
    )
    p.add_argument("--distance", type=float, default=d.distance, help="orbit radius (default: the input camera's)")
    p.add_argument("--fov", type=float, default=d.fov, help="views' field of view, degrees (default: the input's)")
    p.add_argument("--size", type=int, default=d.size, help="views are SIZE×SIZE pixels (default: 128)")
    p.add_argument("--video", choices=("gif", "mp4", "none"), default=d.video, help="orbit video (default: gif)")
    p.add_argument("--mesh", choices=("ply", "obj", "glb", "none"), default=d.mesh, help="mesh format (default: ply)")
    p.add_argument(
        "--mc-resolution", type=int, default=d.mc_resolution, help="marching cubes grid per axis (default: 128)"
    )
    p.add_argument("--points", action="store_true", help="also write points.ply (depth back-projected)")
    p.add_argument("--background", default=d.background, help="colour behind transparent pixels (default: white)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device, help="default: cuda if available")
    p.add_argument("--chunk", type=int, default=d.chunk, help="rays per render chunk (default: 16384)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed; the same seed gives the same files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (it shows only on a terminal)")
    return p


def parse_args(argv=None) -> tuple[argparse.Namespace, RenderOptions]:
    """The photos and --out (a Namespace, used here only) and the checked RenderOptions; exits with one line
    (code 2) when anything is wrong."""
    p = build_parser()
    args = p.parse_args(argv)
    try:
        options = RenderOptions(**{name: getattr(args, name) for name in RenderOptions.names()}).checked()
    except ValueError as error:
        p.error(str(error))
    return args, options


def check_out(out: Path) -> str | None:
    """What stops --out from holding the output folders, in one line, or None. Nothing is created here: the
    nearest existing folder on the way is probed with a temporary folder, removed at once."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: is a file, not a folder"
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing != out and not existing.is_dir():
        return f"--out {out}: {existing} is a file, so no folder can be made under it"
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".nvs-render-probe-"))
    except OSError as error:
        return f"--out {out}: cannot create folders in {existing} ({error.strerror or error})"
    return None


def unique_stems(paths: list[Path]) -> list[str]:
    """Output folder names: the file's stem, with -2, -3 ... when two inputs share one."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = path.stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def render_all(images: list[Path], out: Path, options: RenderOptions, say) -> int:
    """Every photo into out/<stem>/, one at a time; returns how many failed. `say(line, error)` reports."""
    from tqdm import tqdm

    from . import outputs  # torch and the model: imported only now that the arguments are known to be good

    name = prog()
    try:
        model, info = outputs.load(options, warn=lambda message: say(f"{name}: warning: {message}", True))
    except (FileNotFoundError, ValueError) as error:
        say(f"{name}: error: {error}", True)
        return len(images)
    failed = 0
    quiet = options.quiet or not sys.stderr.isatty()
    with tqdm(total=len(images), unit="photo", file=sys.stderr, disable=quiet, dynamic_ncols=True) as bar:
        for path, stem in zip(images, unique_stems(images), strict=True):
            bar.set_description(f"rendering {path.name}")
            try:
                photo = outputs.read_photo(path, options.background)
                target = out / stem
                head = {"input": str(path), "model": info}
                summary = outputs.write_folder(photo, model, options, target, head)
                for warning in summary["warnings"]:
                    say(f"{name}: warning: {path}: {warning}", True)
                say(f"{path} -> {target}/", False)
            except (InputError, outputs.ood.NonFiniteRender) as error:
                failed += 1
                say(f"{name}: error: {path}: {error}", True)
            except Exception as error:  # one bad photo must not stop the others
                failed += 1
                say(f"{name}: error: {path}: {type(error).__name__}: {error}", True)
            bar.update()
    return failed


def main(argv=None) -> int:
    """The command: 0 when every photo was rendered, 2 when any failed (or the options are wrong), 130 on Ctrl-C."""
    args, options = parse_args(argv)
    problem = check_out(args.out)
    if problem:
        print(f"{prog()}: error: {problem}", file=sys.stderr)
        return 2
    finished = []

    def say(line: str, error: bool) -> None:
        if not error:
            finished.append(line)
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr if error else sys.stdout)

    try:
        return 2 if render_all(args.images, args.out, options, say) else 0
    except KeyboardInterrupt:
        print(
            f"{prog()}: interrupted: {len(finished)} of {len(args.images)} photo(s) finished and kept",
            file=sys.stderr,
        )
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
