"""The Gradio demo, started as users start it (`python -m demos.app` in a subprocess on a free loopback port) and
driven through its API with gradio_client, and in headless Chromium."""

from __future__ import annotations

import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demos import browser

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ASSETS = Path(__file__).resolve().parents[2] / "demos" / "assets"
PHOTO = ASSETS / "examples" / "synthetic_box.png"
QUERY = ASSETS / "reid_queries" / "0025_c2s1_254759_00.jpg"
GALLERY = sorted((ASSETS / "reid_gallery").glob("*.jpg"))
UPLOAD_LIMIT = 1_000_000  # the server below is started with --max-file-size 1mb


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server") / "log.txt"


@pytest.fixture(scope="module")
def url(server_log):
    with browser.serve("--max-file-size", "1mb", "--concurrency", "2", log_path=server_log) as address:
        yield address


@pytest.fixture(scope="module")
def client(url):
    return Client(url, verbose=False)


def novel_views(client, photo: Path, views: int, elevation: float = 0.0, distance: float = 2.2):
    return client.predict(handle_file(str(photo)), elevation, distance, views, api_name="/novel_views")


def reidentify(client, query: Path, topk: int, archive: Path | None = None):
    source = "uploaded zip of images" if archive else "bundled synthetic gallery"
    return client.predict(
        handle_file(str(query)), source, handle_file(str(archive)) if archive else None, topk, api_name="/reidentify"
    )


def check_novel_views(result, views: int) -> None:
    gallery, video, depth, mesh, downloads, status = result
    assert len(gallery) == views and len(depth) == views
    for item in gallery:
        with Image.open(item["image"]) as image:
            assert image.size == (128, 128)
    for item in depth:
        with Image.open(item["image"]) as image:
            assert image.mode == "RGB"  # colour-mapped depth
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
    assert Path(mesh).suffix == ".glb" and Path(mesh).read_bytes()[:4] == b"glTF"
    assert sorted(Path(f).suffix for f in downloads) == [".glb", ".ply"]
    assert f"{views} views" in status


def test_novel_views_tab_returns_views_video_depth_and_mesh(client):
    check_novel_views(novel_views(client, PHOTO, views=5), views=5)


def test_novel_views_take_odd_images_as_uploaded(client, tmp_path):
    """Gradio's own preprocessing is off, so 16-bit grayscale and RGBA files reach our reader untouched."""
    ramp = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "gray16.png")
    rgba = np.zeros((24, 24, 4), np.uint8)
    rgba[6:18, 6:18] = (200, 30, 30, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    for name in ("gray16.png", "rgba.png"):
        check_novel_views(novel_views(client, tmp_path / name, views=2), views=2)


def ranking_of(result, topk: int):
    tiles, table, status = result
    rows = table["data"]
    assert len(tiles) == topk and len(rows) == topk
    assert [r[0] for r in rows] == list(range(1, topk + 1))
    similarity = [r[2] for r in rows]
    assert similarity == sorted(similarity, reverse=True)
    for (_, name, sim, distance, camera), tile in zip(rows, tiles, strict=True):
        assert sim == pytest.approx(1 - distance**2 / 2, abs=2e-4)  # cosine similarity of unit vectors
        assert Path(tile["image"]).name == name
        named = re.match(r"-?\d+_c(\d+)", name)  # Market-style names carry the camera id; others get "?"
        assert camera == (named.group(1) if named else "?")
        assert f"cam {camera}" in tile["caption"]
    return rows, status


def test_reid_tab_ranks_the_bundled_gallery(client):
    rows, status = ranking_of(reidentify(client, QUERY, topk=7), topk=7)
    assert f"searched {len(GALLERY)} gallery images" in status
    assert {r[1] for r in rows} <= {p.name for p in GALLERY}


def test_reidentify_needs_only_a_query(client):
    """Through the API as through the page: the gallery archive (and the source, and k) are optional."""
    rows, status = ranking_of(client.predict(handle_file(str(QUERY)), api_name="/reidentify"), topk=10)
    assert f"searched {len(GALLERY)} gallery images" in status
    rows, _ = ranking_of(client.predict(query=handle_file(str(QUERY)), topk=4, api_name="/reidentify"), topk=4)
    assert {r[1] for r in rows} <= {p.name for p in GALLERY}


def test_defaults_match_the_command_line(client):
    """The page's elevation starts where python -m nvs.render's does."""
    from nvs import render

    parameters = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/novel_views"]
    elevation = next(p for p in parameters["parameters"] if p["label"].startswith("Elevation"))
    assert elevation["parameter_default"] == render.build_parser().get_default("elevation") == 0.0


def test_reid_tab_ranks_an_uploaded_zip(client, tmp_path):
    archive = tmp_path / "gallery.zip"
    chosen = GALLERY[:12]
    with zipfile.ZipFile(archive, "w") as zf:
        for i, path in enumerate(chosen):
            zf.write(path, f"people/{'cams/' if i % 2 else ''}{path.name}")  # nested folders are fine
        zf.writestr("people/broken.jpg", b"not a jpeg")  # skipped, and the page says so
        zf.writestr("people/notes.txt", "ignored: not an image name")
        zf.writestr("../escape.jpg", chosen[0].read_bytes())  # a path that climbs out is written inside
    rows, status = ranking_of(reidentify(client, QUERY, topk=30, archive=archive), topk=13)
    assert "searched 13 gallery images" in status and "1 file(s)" in status
    assert {r[1] for r in rows} == {p.name for p in chosen} | {"escape.jpg"}
    assert not (tmp_path.parent / "escape.jpg").exists()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c, d: novel_views(c, d / "notes.jpg", views=2), "cannot be used as a photo"),
        (lambda c, d: reidentify(c, d / "notes.jpg", topk=3), "query is not a readable image"),
        (lambda c, d: reidentify(c, QUERY, topk=3, archive=d / "broken.zip"), "not a valid zip"),
        (lambda c, d: reidentify(c, QUERY, topk=3, archive=d / "empty.zip"), "holds no images"),
        (lambda c, d: novel_views(c, d / "big.png", views=2), "size"),
        (lambda c, d: novel_views(c, d / "canvas.png", views=2), "megapixels"),
    ],
    ids=["photo-not-an-image", "query-not-an-image", "broken-zip", "zip-without-images", "upload-too-big", "huge"],
)
def test_bad_uploads_show_a_message_and_the_server_stays_up(client, tmp_path, call, message):
    (tmp_path / "notes.jpg").write_text("a text file named like a photo")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "no images here")
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "big.png")
    assert (tmp_path / "big.png").stat().st_size > UPLOAD_LIMIT
    Image.new("L", (8000, 6000), 128).save(tmp_path / "canvas.png")  # 48 megapixels in a few kB
    with pytest.raises(Exception, match=message) as raised:
        call(client, tmp_path)
    shown = str(raised.value)  # the upload limit is checked by the client, naming the user's own file
    server_folders = (f"{tempfile.gettempdir()}/gradio", "lavis3d-demo-")  # Gradio's uploads, the demo's work
    assert not any(folder in shown for folder in server_folders), shown
    check_novel_views(novel_views(client, PHOTO, views=1), views=1)  # still serving


def test_user_errors_leave_no_traceback_in_the_server_log(client, server_log, tmp_path):
    (tmp_path / "notes.jpg").write_text("a text file named like a photo")
    for call in (
        lambda: novel_views(client, tmp_path / "notes.jpg", views=1),
        lambda: reidentify(client, tmp_path / "notes.jpg", topk=3),
    ):
        with pytest.raises(Exception, match="cannot be used as a photo|not a readable image"):
            call()
    check_novel_views(novel_views(client, PHOTO, views=1), views=1)  # after the errors, so the log has caught up
    log = server_log.read_text(errors="replace")
    assert "Traceback" not in log and "gradio.exceptions.Error" not in log


def test_messages_keep_file_names_and_drop_server_folders():
    from demos.app import hide_paths

    upload = f"{tempfile.gettempdir()}/gradio/3f2a9c/sub dir/notes.jpg"
    message = f"cannot identify image file '{tempfile.gettempdir()}/gradio/3f2a9c/notes.jpg'"
    assert hide_paths(message) == "cannot identify image file 'notes.jpg'"
    assert hide_paths("no path here: 0.5 > 0.25") == "no path here: 0.5 > 0.25"
    assert tempfile.gettempdir() not in hide_paths(f"[Errno 2] No such file: {upload.replace(' ', '_')}")


@pytest.mark.slow
def test_twenty_concurrent_novel_view_requests_all_succeed(url):
    clients = [Client(url, verbose=False) for _ in range(4)]
    jobs = [
        clients[i % 4].submit(handle_file(str(PHOTO)), 9.0 * i - 90, 2.2, 2, api_name="/novel_views") for i in range(20)
    ]
    for job in jobs:  # submitted together: the server queues them, two at a time
        check_novel_views(job.result(timeout=600), views=2)


@pytest.mark.slow
def test_real_browser_renders_views_and_ranks_people(url, tmp_path):
    reason = browser.missing()
    if reason:
        pytest.skip(f"no headless browser: {reason}")
    with browser.chromium() as driver:
        shown = browser.novel_views(driver, url, PHOTO, tmp_path / "novel-views.png", views=8)
        found = browser.reidentify(driver, url, QUERY, tmp_path / "reid.png", topk=10)
        cut = browser.cut_captions(driver, "reid-matches")
    assert shown == 8 and found == 10
    assert cut == []  # every "#k sim 0.xxx cam c" caption shown whole
    for name in ("novel-views.png", "reid.png"):
        with Image.open(tmp_path / name) as shot:
            pixels = np.asarray(shot.convert("RGB"))
        assert shot.size[0] >= 1000 and pixels.std() > 10  # a rendered page, not a blank one


def test_app_refuses_bad_command_lines():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "demos.app", "--port", "70000"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "--port" in result.stderr
