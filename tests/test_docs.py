"""The documentation site builds offline with warnings as errors, and its pages render in a real browser.

The build is ``mkdocs build --strict`` (what ``./run docs`` runs) into a temporary folder; the pages are
served on localhost and opened in headless Chromium (Debian's ``chromium`` and ``chromedriver``, driven by
selenium, with the background networking that this machine's closed network refuses switched off). Each
page must show its heading and no broken image. Screenshots go to ``$DSML_DOCS_SCREENSHOTS`` when set
(else the test's temporary folder), to be looked at.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"
)

# (page, a heading it must show, words its text must hold)
PAGES = [
    ("", "dsml", ["./run demo", "from dsml import *"]),
    ("api/training/", "DSTorch.train", ["Train model with mini-batches", "num_epochs", "Epoch 1/20, Loss: 2.4026"]),
    ("notebooks/13_deep_learning/", "Chapter 13: Deep learning, with dsml", ["DSTorch.score_image", "0.888"]),
]


def build(site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    result = build(folder)
    assert result.returncode == 0, result.stderr[-4000:]
    return folder


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request in the test output
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
             "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1280,1600"]  # fmt: skip
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DSML_DOCS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
def test_the_site_builds_with_warnings_as_errors_and_fetches_nothing(site):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("index.html"))
    assert "api/training/index.html" in pages and "notebooks/17_transfer_learning/index.html" in pages
    assert "CHANGELOG/index.html" in pages and len(pages) >= 20
    for page in site.rglob("*.html"):  # nothing a page needs comes from another host (the build is offline)
        text = page.read_text()
        assert 'src="http' not in text and "fonts.googleapis" not in text, page


@pytest.mark.slow
def test_a_docstring_page_names_a_function_that_does_not_exist_as_a_build_error(tmp_path):
    """Strict mode is real: a reference to a missing function fails the build."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "api" / "training.md").write_text("# Training\n\n::: dsml.DSTorch.no_such_function\n")
    config = (ROOT / "mkdocs.yml").read_text().replace("docs_dir: docs", f"docs_dir: {docs}")
    (tmp_path / "mkdocs.yml").write_text(config.replace("docs/hooks.py", str(docs / "hooks.py")))
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml"),
               "--site-dir", str(tmp_path / "site")]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0 and "no_such_function" in result.stderr


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize(("page", "heading", "words"), PAGES, ids=["home", "DSTorch.train", "notebook 13"])
def test_a_page_renders_in_chromium_with_its_heading_and_no_broken_image(browser, server, shots, page, heading, words):
    from selenium.webdriver.common.by import By

    browser.get(server + page)
    headings = [h.text.strip().rstrip("¶").strip() for h in browser.find_elements(By.CSS_SELECTOR, "h1, h2")]
    assert heading in headings, headings
    text = browser.find_element(By.TAG_NAME, "body").text
    assert all(word in text for word in words), [w for w in words if w not in text]
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.currentSrc.slice(0, 60), i.complete, i.naturalWidth])"
    )
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert not broken, broken
    if page.startswith("notebooks/"):
        assert len(images) >= 3  # the stored figures: the image grid, the confusion matrix, the mistakes
    assert browser.save_screenshot(str(shots / f"{page.strip('/').replace('/', '_') or 'home'}.png"))
