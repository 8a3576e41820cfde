"""The course website: a strict build that fails on broken links, and a real browser run.

Both skip when their tools are missing (``pip install -e ".[docs,browser]"`` and Debian's
``chromium``); CI runs the strict build itself in ``.ci/run``.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import shutil
import threading
from pathlib import Path

import pytest

from course.labkit import REPO_ROOT, load_module_from_path

site = load_module_from_path(REPO_ROOT / "tools" / "build_site.py")
needs_mkdocs = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
                                  reason="needs the docs extra: pip install -e '.[docs]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    nav = site.stage(REPO_ROOT, tmp / "src")
    config = site.write_config(nav, tmp / "src", tmp / "mkdocs.yml")
    assert site.build(config, tmp / "out") == 0, "strict build failed: run python tools/build_site.py build"
    return tmp / "out"


@needs_mkdocs
def test_strict_build_fails_on_a_broken_internal_link(tmp_path):
    nav = site.stage(REPO_ROOT, tmp_path / "src")
    index = tmp_path / "src" / "index.md"
    index.write_text(index.read_text() + "\n[gone](phase-00-foundations/no-such-page.md)\n")
    config = site.write_config(nav, tmp_path / "src", tmp_path / "mkdocs.yml")
    assert site.build(config, tmp_path / "out") != 0


@needs_mkdocs
def test_nav_lists_every_phase_in_reading_order():
    nav = site.stage(REPO_ROOT, REPO_ROOT / "build" / "nav-check")
    phases = next(item["Phases"] for item in nav if "Phases" in item)
    numbers = [next(iter(p)).split(" ")[0] for p in phases]
    assert numbers == sorted(numbers) and numbers[:1] == ["00"]
    first = next(iter(phases[0].values()))
    labels = [next(iter(i)) for i in first]
    assert labels[:3] == ["Guide", "Deep dive", "Mini-build"] and labels[-1] == "Cheatsheet"


@needs_mkdocs
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None or CHROMIUM is None,
                    reason="needs playwright (pip install -e '.[browser]') and Debian's chromium (apt install chromium)")
def test_site_in_a_real_browser(built_site):
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    lab_page = next(built_site.glob("phase-02-*/labs/lab-01-*/index.html"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/index.html")
            assert "vLLM Mastery" in page.title()
            page.goto(f"{base}/{lab_page.relative_to(built_site)}")
            assert page.locator("article h1").first.inner_text().strip()
            # Follow a link to another page: one in the text if there is one, else "Next".
            links = page.locator("article a[href*='.html']:not(.headerlink)")
            link = links.first if links.count() else page.locator("a.md-footer__link--next").first
            href = link.get_attribute("href")
            link.click()
            page.wait_for_load_state()
            assert page.url.endswith(Path(href.split("#")[0]).name), (href, page.url)
            # Search is client-side (a web worker over the search index).
            page.goto(f"{base}/index.html")
            box = page.locator("input.md-search__input")
            box.click()
            box.fill("PagedAttention")
            page.wait_for_selector(".md-search-result__item", timeout=15000)
            assert page.locator(".md-search-result__item").count() > 0
            page.screenshot(path=str(built_site.parent / "search.png"))
            browser.close()
    finally:
        server.shutdown()
