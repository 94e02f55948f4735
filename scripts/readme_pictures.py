"""The README's picture of `nvs-render`'s outputs: the input photo, then four of the orbit's views above their
depth maps, from a folder the command wrote.

    python -m nvs.render demos/assets/examples/synthetic_spheres.png --out renders
    python scripts/readme_pictures.py renders/synthetic_spheres demos/assets/examples/synthetic_spheres.png \
        docs/images/example-render.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageOps


def contact_sheet(folder: Path, photo: Path, out: Path, views: tuple[int, ...] = (0, 2, 4, 6), size: int = 128) -> None:
    """One row of views and one of depth maps, the photo (centre-cropped square) at the left of both."""
    gap = 6
    sheet = Image.new("RGB", (size * (len(views) + 1) + gap * (len(views) + 1), 2 * size + gap), "white")
    with Image.open(photo) as image:
        square = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (2 * size + gap, 2 * size + gap))
    sheet.paste(square.resize((size, size)), (0, (2 * size + gap - size) // 2))
    for column, i in enumerate(views, 1):
        x = column * (size + gap)
        for row, kind in enumerate(("views", "depth")):
            with Image.open(folder / kind / f"{i:03d}.png") as tile:
                sheet.paste(tile.convert("RGB").resize((size, size)), (x, row * (size + gap)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


if __name__ == "__main__":
    contact_sheet(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
