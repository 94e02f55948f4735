"""The Gradio demo: novel views from one photo (NViST) and person re-identification (CORE-ReID).

    python -m demos.app [--host 127.0.0.1] [--port 7860] [--concurrency 2] [--max-file-size 10mb]

Both default models load once at start. Requests go through Gradio's queue, at most --concurrency at a time;
uploads above --max-file-size are refused by the server. A bad upload (not an image, a broken zip) shows its
reason in the page and the server carries on.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

import torch
from PIL import Image

import nvs
import reid

ASSETS = Path(__file__).with_name("assets")
EXAMPLES = [
    Path(nvs.__file__).with_name("assets") / "coffee.jpg",
    *sorted((ASSETS / "examples").glob("*.png")),
]
BUNDLED_GALLERY = ASSETS / "reid_gallery"
EXAMPLE_QUERIES = sorted((ASSETS / "reid_queries").glob("*.jpg"))
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MAX_PIXELS = 40_000_000
BUNDLED, UPLOADED = "bundled synthetic gallery", "uploaded zip of images"
DEFAULT_ELEVATION = 0.0  # the same as python -m nvs.render's --elevation
# Captions in full (Gradio cuts them to one line with an ellipsis), and whole depth maps in their gallery.
CSS = """
#reid-matches .caption-label { white-space: normal; max-width: 100%; overflow: visible; text-overflow: clip; }
#nvs-depth .thumbnail-item img, #nvs-views .thumbnail-item img { object-fit: contain; }
"""


Upload = dict | str | Path | None  # a FileData dict from Gradio, or a path


class UserError(ValueError):
    """A problem with what the user gave; its message is shown in the page as it is."""


class Demo:
    """The models, loaded once, and the request handlers. Each request writes into its own folder under a
    private working directory; folders older than `keep_s` are removed as new requests come in."""

    def __init__(
        self,
        nvs_model: nvs.NViST,
        reid_model: reid.ReIDModel,
        *,
        render_size: int = 128,
        mc_resolution: int = 96,
        max_zip_images: int = 2000,
        max_zip_bytes: int = 200 * 2**20,
        keep_s: float = 3600.0,
    ):
        self.nvs_model, self.reid_model = nvs_model, reid_model
        self.render_size, self.mc_resolution = render_size, mc_resolution
        self.max_zip_images, self.max_zip_bytes, self.keep_s = max_zip_images, max_zip_bytes, keep_s
        self.work = Path(tempfile.mkdtemp(prefix="lavis3d-demo-"))
        atexit.register(shutil.rmtree, self.work, ignore_errors=True)
        self._lock = threading.Lock()
        self.bundled_gallery = sorted(p for p in BUNDLED_GALLERY.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.bundled_features = reid_model.embed(self.bundled_gallery)  # once: every search of it reuses them

    def _request_folder(self) -> Path:
        now = time.time()
        with self._lock:
            for old in self.work.iterdir():
                if now - old.stat().st_mtime > self.keep_s:
                    shutil.rmtree(old, ignore_errors=True)
        folder = self.work / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def novel_views(self, photo: Upload, elevation: float, distance: float, views: int):
        """Views, orbit video, depth maps, mesh and point cloud of the object in `photo`."""
        photo = upload_path(photo)
        if photo is None:
            raise UserError("Upload a photo or pick an example first.")
        check_pixels(photo)
        out = self._request_folder() / "render"
        try:
            summary = nvs.render_to_folder(
                photo,
                out,
                model=self.nvs_model,
                views=int(views),
                elevation=float(elevation),
                distance=float(distance),
                size=self.render_size,
                video="mp4",
                mesh="glb",
                mc_resolution=self.mc_resolution,
                points=True,
            )
        except nvs.InputError as error:
            raise UserError(f"This file cannot be used as a photo: {hide_paths(str(error))}.") from error
        except ValueError as error:  # an option out of range
            raise UserError(str(error)) from error
        n = len(summary["cameras"]["views"])
        view_files = [(str(out / f"views/{i:03d}.png"), f"view {i}") for i in range(n)]
        depth_files = [(str(out / f"depth/{i:03d}.png"), f"depth {i}") for i in range(n)]
        mesh = str(out / summary["mesh"]["file"]) if summary["mesh"] else None
        downloads = [f for f in (mesh, str(out / "points.ply")) if f]
        notes = [f"{n} views of {self.render_size}² px in {summary['timings_s']['total']:.2f} s"]
        notes += [f"warning: {w}" for w in summary["warnings"]]
        return view_files, str(out / "orbit.mp4"), depth_files, mesh, downloads, "\n\n".join(notes)

    def reidentify(self, query: Upload, source: str = BUNDLED, archive: Upload = None, topk: int = 10):
        """The top-k gallery images nearest the query, with their similarity and camera. Only the query is
        required (the defaults make the other parameters optional in Gradio's API too): without an archive, the
        bundled gallery is searched."""
        query, archive = upload_path(query), upload_path(archive)
        if query is None:
            raise UserError("Upload a query image or pick an example first.")
        check_pixels(query)  # from the header alone, before anything is decoded
        if not _is_image(query):
            raise UserError("The query is not a readable image.")
        notes = []
        if source == UPLOADED or (source is None and archive is not None):
            if archive is None:
                raise UserError("Choose a zip of gallery images, or the bundled gallery.")
            gallery, skipped = self.unpack_gallery(archive, self._request_folder())
            if skipped:
                notes.append(f"{skipped} file(s) in the zip were not readable images and were left out")
            features = None
        else:
            gallery, features = self.bundled_gallery, self.bundled_features
        matches = reid.rank(
            self.reid_model, query, gallery, topk=min(int(topk), len(gallery)), rerank=False, gallery_features=features
        )
        tiles, rows = [], []
        for i, m in enumerate(matches, 1):
            similarity = 1.0 - m.distance**2 / 2  # embeddings are L2-normalised: cosine similarity
            camera = "?" if m.camera is None else str(m.camera)
            tiles.append((str(m.path), f"#{i} sim {similarity:.3f} cam {camera}"))
            rows.append([i, m.path.name, round(similarity, 4), round(m.distance, 4), camera])
        notes.insert(0, f"searched {len(gallery)} gallery images")
        return tiles, rows, "\n\n".join(notes)

    def unpack_gallery(self, archive: Path, folder: Path) -> tuple[list[Path], int]:
        """The images of a zip, written under `folder` by their own names (no path from the zip is trusted).
        Returns the readable images and how many image-named files were not readable."""
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [
                    m
                    for m in zf.infolist()
                    if not m.is_dir()
                    and Path(m.filename).suffix.lower() in IMAGE_SUFFIXES
                    and not Path(m.filename).name.startswith(".")  # macOS's ._ resource forks
                    and "__MACOSX" not in Path(m.filename).parts
                ]
                if not members:
                    raise UserError(f"The zip holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
                if len(members) > self.max_zip_images:
                    raise UserError(f"The zip holds {len(members)} images; the limit is {self.max_zip_images}.")
                if sum(m.file_size for m in members) > self.max_zip_bytes:
                    raise UserError(f"The zip's images add up to more than {self.max_zip_bytes // 2**20} MB.")
                paths, skipped = [], 0
                for i, m in enumerate(members):
                    path = folder / f"{i:05d}" / Path(m.filename).name
                    path.parent.mkdir()
                    path.write_bytes(zf.read(m))
                    if _is_image(path):
                        paths.append(path)
                    else:
                        skipped += 1
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as error:
            raise UserError(f"The gallery is not a valid zip file ({hide_paths(str(error))}).") from error
        if not paths:
            raise UserError("None of the zip's images could be read.")
        return paths, skipped


def upload_path(value: Upload) -> Path | None:
    """The file behind an input: the handlers run without Gradio's preprocessing (so that an unreadable upload
    gets our message, not a component error, and images reach the model as uploaded: 16-bit, alpha, EXIF), so
    uploads arrive as FileData dicts; plain paths come from Python callers."""
    if isinstance(value, dict):
        value = value.get("path")
    return Path(value) if value else None


def check_pixels(path: Path) -> None:
    """Refuse images too large to decode comfortably (a small PNG can hold a huge canvas)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return  # unreadable: the reader says so in its own words
    if width * height > MAX_PIXELS:
        raise UserError(
            f"The image is {width}×{height} pixels; the demo takes at most {MAX_PIXELS // 10**6} megapixels."
        )


def hide_paths(message: str) -> str:
    """The message with every path under the server's temporary folders cut to its file name: users see which
    of their files failed, never where the server keeps uploads."""
    roots = {tempfile.gettempdir(), os.environ.get("GRADIO_TEMP_DIR", ""), "/tmp"} - {""}
    for root in sorted(roots, key=len, reverse=True):
        message = re.sub(re.escape(root.rstrip("/")) + r"/(?:[^\s'\"]*/)?([^/\s'\"]+)", r"\1", message)
    return message


def _is_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


def shown(handler):
    """A handler whose UserErrors (and unexpected errors, briefly) appear in the page as Gradio errors."""
    import gradio as gr

    @functools.wraps(handler)
    def wrapped(*args):
        try:
            with torch.inference_mode():  # grad mode is per thread, and Gradio runs handlers in worker threads
                return handler(*args)
        except UserError as error:  # the user's to fix: a message in the page, no traceback in the server's log
            raise gr.Error(hide_paths(str(error)), print_exception=False) from error
        except Exception as error:  # the server stays up, logs the traceback; the page says what failed
            raise gr.Error(f"Something went wrong: {type(error).__name__}: {hide_paths(str(error))}") from error

    return wrapped


NOVEL_VIEWS_INTRO = (
    "One photo in, a radiance field out, in one forward pass. The shipped model is tiny and was "
    "trained on our synthetic objects: it does best on photos like the examples."
)
REID_INTRO = (
    "A query person, ranked against a gallery by CORE-ReID embeddings (flip-averaged, L2-normalised). "
    "File names `<id>_c<camera>_...` (Market-1501 style) give the camera ids."
)


def _image_input(gr, label: str, elem_id: str, examples, examples_label: str):
    """An image input (handed over as a file path) with clickable examples below it."""
    image = gr.Image(type="filepath", label=label, elem_id=elem_id, height=256)
    gr.Examples([[str(p)] for p in examples], inputs=[image], label=examples_label)
    return image


def build(demo: Demo):
    """The two-tab Gradio app."""
    import gradio as gr

    distance = float(demo.nvs_model.config.default_distance)
    with gr.Blocks(title="lavis3d demo", analytics_enabled=False, delete_cache=(1800, 3600)) as app:
        gr.Markdown("# lavis3d\nNovel views from one photo (NViST) and person re-identification (CORE-ReID).")
        with gr.Tab("Novel views", id="novel-views"):
            gr.Markdown(NOVEL_VIEWS_INTRO)
            with gr.Row():
                with gr.Column(scale=1):
                    photo = _image_input(gr, "Photo", "nvs-photo", EXAMPLES, "Examples")
                    elevation = gr.Slider(-90, 90, value=DEFAULT_ELEVATION, step=1, label="Elevation (degrees)")
                    radius = gr.Slider(1.2, 4.0, value=distance, step=0.1, label="Distance (orbit radius)")
                    views = gr.Slider(1, 24, value=8, step=1, label="Number of views")
                    run = gr.Button("Render", variant="primary", elem_id="nvs-run")
                with gr.Column(scale=2):
                    status = gr.Markdown(elem_id="nvs-status")
                    gallery = gr.Gallery(label="Novel views", columns=4, elem_id="nvs-views", format="png")
                    depth = gr.Gallery(
                        label="Depth", columns=4, object_fit="contain", elem_id="nvs-depth", format="png"
                    )
                    with gr.Row():
                        video = gr.Video(label="Orbit", elem_id="nvs-orbit", autoplay=True, loop=True, height=320)
                        mesh = gr.Model3D(label="Mesh", elem_id="nvs-mesh", clear_color=(1, 1, 1, 1), height=320)
                    files = gr.File(label="Download mesh and points", file_count="multiple")
            run.click(
                shown(demo.novel_views),
                inputs=[photo, elevation, radius, views],
                outputs=[gallery, video, depth, mesh, files, status],
                api_name="novel_views",
                preprocess=False,
            )
        with gr.Tab("Re-identification", id="reid"):
            gr.Markdown(REID_INTRO)
            with gr.Row():
                with gr.Column(scale=1):
                    query = _image_input(gr, "Query", "reid-query", EXAMPLE_QUERIES[:6], "Example queries")
                    source = gr.Radio([BUNDLED, UPLOADED], value=BUNDLED, label="Gallery")
                    archive = gr.File(label="Gallery zip", file_types=[".zip"], elem_id="reid-zip")
                    topk = gr.Slider(1, 30, value=10, step=1, label="Top k")
                    search = gr.Button("Search", variant="primary", elem_id="reid-run")
                with gr.Column(scale=2):
                    found = gr.Markdown(elem_id="reid-status")
                    matches = gr.Gallery(
                        label="Top matches",
                        columns=5,
                        height=330,
                        object_fit="contain",
                        elem_id="reid-matches",
                        format="png",
                    )
                    table = gr.Dataframe(
                        headers=["rank", "file", "similarity", "distance", "camera"],
                        label="Ranking",
                        interactive=False,
                    )
            search.click(
                shown(demo.reidentify),
                inputs=[query, source, archive, topk],
                outputs=[matches, table, found],
                api_name="reidentify",
                preprocess=False,
            )
    return app


def parse_args(argv=None) -> argparse.Namespace:
    prog = "lavis3d-demo" if Path(sys.argv[0]).name == "lavis3d-demo" else "python -m demos.app"
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--concurrency", type=int, default=2, help="requests run at once per event (default: 2)")
    p.add_argument("--queue-size", type=int, default=64, help="requests waiting at most (default: 64)")
    p.add_argument("--max-file-size", default="10mb", help="largest upload (default: 10mb)")
    p.add_argument("--nvs-checkpoint", type=Path, default=None, help="NViST model (default: the shipped one)")
    p.add_argument("--reid-checkpoint", type=Path, default=None, help="re-id model (default: the shipped one)")
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.queue_size < 1:
        p.error("--concurrency and --queue-size must be at least 1")
    if not 0 < args.port < 65536:
        p.error(f"--port must be between 1 and 65535, got {args.port}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        nvs_model = nvs.load_model(args.nvs_checkpoint)
        reid_model = reid.load_model(args.reid_checkpoint)
    except (FileNotFoundError, ValueError) as error:
        print(f"python -m demos.app: error: {error}", file=sys.stderr)
        return 2
    app = build(Demo(nvs_model, reid_model))
    app.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=args.max_file_size,
        show_error=True,
        css=CSS,
        ssr_mode=False,
        footer_links=["api"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
