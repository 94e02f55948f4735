"""Camera-style renders (stage 0, `python -m reid.gan`) matched to the training images they restyle.

Stage 0 writes every training image of camera a, rendered in camera b's style, as
`<original stem>_fake_<a+1>to<b+1>.jpg` into one folder (`<out>/bounding_box_train_camstyle`);
`reid.gan.parse_style_name` reads such a name back. A render is the same person as its original, seen as if by
another camera: it keeps the original's pid and camid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from .formats import IMAGE_EXTENSIONS, Sample

RENDER_FOLDER = "bounding_box_train_camstyle"


def render_files(folder: str | Path) -> list[Path]:
    """The images (sorted, hidden files skipped) of a render folder: `folder` itself, or, when it holds one,
    `folder/bounding_box_train_camstyle` (the stage-0 output folder may be given)."""
    folder = Path(folder)
    if (folder / RENDER_FOLDER).is_dir():
        folder = folder / RENDER_FOLDER
    if not folder.is_dir():
        raise ValueError(
            f"{folder}: not a folder (expected the {RENDER_FOLDER} folder that stage 0, python -m reid.gan --root DATA"
            " --out DIR, writes; source_camstyle / target_camstyle null trains without renders)"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise ValueError(f"{folder}: no images (expected renders named <original stem>_fake_<a>to<b>.jpg)")
    return files


def match_renders(
    folder: str | Path, originals: Sequence[Sample], excluded: Iterable[Sample] = ()
) -> tuple[list[list[str]], int]:
    """The renders in `folder` of each of `originals` (a list aligned with `originals`, each sorted by path) and
    the number of renders dropped because their original is among `excluded` (e.g. identities held out for
    validation, which must not reach training). Originals are found by file stem; a render whose name is not a
    render name (ValueError from `parse_style_name`), whose original is neither an original nor excluded, whose
    stem is shared by two originals, or whose source camera is not its original's camera, is a ValueError
    naming the file."""
    from ..gan.stage0 import parse_style_name  # reid.gan's package imports its training code: load it on use

    index: dict[str, list[int]] = {}
    for i, sample in enumerate(originals):
        index.setdefault(Path(sample.path).stem, []).append(i)
    skipped = {Path(s.path).stem: s for s in excluded}
    renders: list[list[str]] = [[] for _ in originals]
    dropped = 0
    for path in render_files(folder):
        stem, camera_from, _ = parse_style_name(path)
        owners = index.get(stem, [])
        if len(owners) > 1:
            paths = ", ".join(originals[i].path for i in owners)
            raise ValueError(f"{path}: ambiguous render, its original's name {stem!r} is shared by {paths}")
        if not owners:
            if stem in skipped:
                dropped += 1
                continue
            raise ValueError(
                f"{path}: a render of {stem!r}, which is not among the {len(originals)} training images "
                "(renders from another dataset or split?)"
            )
        original = originals[owners[0]]
        if original.camid != camera_from:
            raise ValueError(
                f"{path}: rendered from camera {camera_from + 1}, but its original {original.path} is from camera "
                f"{original.camid + 1}"
            )
        renders[owners[0]].append(str(path))
    return renders, dropped
