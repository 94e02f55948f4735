"""Drive the demo in headless Chromium (Debian's chromium + chromium-driver, through Selenium): upload, run,
wait for the results and take screenshots. The README's screenshots come from here:

    python -m demos.browser --out docs/images        # starts the app on a free port, shoots both tabs
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ASSETS = Path(__file__).with_name("assets")
PHOTO = ASSETS / "examples" / "synthetic_spheres.png"
QUERY = ASSETS / "reid_queries" / "0025_c2s1_254759_00.jpg"


def missing() -> str | None:
    """Why a browser run is impossible here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} not found (Debian package {package}; `make setup` installs it when run as root)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(*args: str, timeout: float = 180.0, log_path: Path | None = None) -> Iterator[str]:
    """`python -m demos.app` in a subprocess on a free loopback port; yields its URL once it answers. The server's
    output goes to `log_path` when given (tests read it), else to a temporary file."""
    port = free_port()
    log = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()  # closed below
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "demos.app", "--host", "127.0.0.1", "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the demo exited with code {process.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the demo did not answer at {url} within {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1500):
    """A headless Chromium driven by Selenium, with a fresh profile and no background network traffic."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lavis3d-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait_for(driver, css: str, count: int, timeout: float):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        lambda d: found if len(found := d.find_elements(By.CSS_SELECTOR, css)) >= count else False
    )


def _upload(driver, component: str, path: Path, timeout: float) -> None:
    field = _wait_for(driver, f"#{component} input[type=file]", 1, timeout)[0]  # once the page has rendered
    field.send_keys(str(path.resolve()))
    _wait_for(driver, f"#{component} img", 1, timeout)  # the preview: the upload has reached the server


def _click(driver, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def novel_views(driver, url: str, photo: Path, out: Path, views: int = 8, timeout: float = 180.0) -> int:
    """Upload `photo` on the Novel views tab, render, wait for the gallery, save a screenshot to `out`.
    Returns the number of view images shown."""
    driver.get(url)
    _upload(driver, "nvs-photo", photo, timeout)
    _click(driver, "nvs-run")
    shown = _wait_for(driver, "#nvs-views img", views, timeout)
    _wait_for(driver, "#nvs-orbit video", 1, timeout)
    time.sleep(1.5)  # let the video and the 3-D viewer draw their first frame
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(out))
    return len(shown)


def reidentify(driver, url: str, query: Path, out: Path, topk: int = 10, timeout: float = 120.0) -> int:
    """Upload `query` on the Re-identification tab, search the bundled gallery, wait for the matches, save a
    screenshot to `out`. Returns the number of matches shown."""
    driver.get(url)
    tabs = _wait_for(driver, "button[role=tab]", 2, timeout)
    tab = next(b for b in tabs if "Re-id" in b.text)
    tab.click()
    _upload(driver, "reid-query", query, timeout)
    _click(driver, "reid-run")
    shown = _wait_for(driver, "#reid-matches img", topk, timeout)
    time.sleep(0.5)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(out))
    return len(shown)


def cut_captions(driver, elem_id: str) -> list[str]:
    """The captions in gallery `elem_id` that the page shows cut (their text is wider or taller than their box)."""
    script = (
        "return Array.from(document.querySelectorAll(arguments[0] + ' .caption-label'))"
        ".filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)"
        ".map(e => e.textContent)"
    )
    return driver.execute_script(script, f"#{elem_id}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m demos.browser", description="Screenshots of both demo tabs.")
    p.add_argument("--out", type=Path, default=Path("docs/images"), help="folder for the PNGs")
    args = p.parse_args(argv)
    reason = missing()
    if reason:
        print(f"python -m demos.browser: error: {reason}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with serve() as url, chromium(1400, 1700) as driver:
        n = novel_views(driver, url, PHOTO, args.out / "demo-novel-views.png")
        k = reidentify(driver, url, QUERY, args.out / "demo-reid.png")
    print(f"wrote {args.out / 'demo-novel-views.png'} ({n} views), {args.out / 'demo-reid.png'} ({k} matches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
