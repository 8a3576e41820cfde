"""The course website in a real browser: headless Chromium, driven by Playwright.

Builds the site (strict), serves it on 127.0.0.1 and loads every page. It fails on

- Markdown left unrendered inside an answer (a backtick, ``**``, ``[text](url)`` in its
  text outside code);
- any request to an address other than the loopback one (a CDN font, a script);
- a broken internal link or image, or a link to an anchor the target page lacks;
- a code block or table wider than the page that cannot be scrolled (cut-off lines);
- a JavaScript error, or a search box that finds nothing.

Needs ``pip install -e ".[docs,browser]"`` and Debian's ``chromium`` (never
``playwright install``). The screenshot of an opened answer lands in
``build/site-browser/`` for a human to look at.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import ipaddress
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                 if p and Path(p).exists()), None)
MISSING = [why for why, gone in [
    ("the docs extra (pip install -e '.[docs]')", importlib.util.find_spec("mkdocs") is None),
    ("the browser extra (pip install -e '.[browser]')", importlib.util.find_spec("playwright") is None),
    ("Debian's chromium (apt-get install -y chromium)", CHROMIUM is None)] if gone]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(MISSING), reason="needs " + ", ".join(MISSING))]
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = REPO_ROOT / "build" / "site-browser"
UNRENDERED = [("a backtick", re.compile(r"`")), ("**", re.compile(r"\*\*")),
              ("a Markdown link", re.compile(r"\[[^\]\n]+\]\([^)\s]+\)"))]

# A code block, diagram or table whose content is wider than its box must scroll: the
# element itself (or, where it lets the content spill, its first clipping ancestor) has
# overflow-x auto or scroll. Returns the ones cut off instead.
CUT_OFF_JS = """() => {
  const cut = [];
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  for (const el of document.querySelectorAll('article pre, article pre > code, article table')) {
    if (el.scrollWidth <= el.clientWidth + 1) continue;
    let a = el;
    while (a && getComputedStyle(a).overflowX === 'visible' && a !== document.body) a = a.parentElement;
    if (!a || !scrolls(a)) cut.push(el.tagName + ': ' + el.innerText.split('\\n').reduce((x, y) => y.length > x.length ? y : x, ''));
  }
  return cut;
}"""


def is_loopback(url: str) -> bool:
    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname
    if scheme in ("data", "blob", "about"):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(scope="module")
def served_site(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("build_site", REPO_ROOT / "tools" / "build_site.py")
    site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site)
    tmp = tmp_path_factory.mktemp("site")
    config = site.write_config(REPO_ROOT, tmp / "cfg" / "mkdocs.yml")
    out = tmp / "out"
    assert site.build(config, out) == 0, "strict build failed: run python tools/build_site.py build"

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def target_exists(out: Path, base: str, page_url: str, href: str, ids: dict) -> str | None:
    """None if an internal ``href`` on ``page_url`` resolves to a file (and anchor) in ``out``."""
    url = urljoin(page_url, href)
    if not url.startswith(base):
        return None
    parts = urlsplit(url)
    path = out / unquote(parts.path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return f"{href} -> no file {path.relative_to(out)}"
    if parts.fragment and path.suffix == ".html":
        if path not in ids:
            ids[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
        if unquote(parts.fragment) not in ids[path]:
            return f"{href} -> {path.relative_to(out)} has no id {parts.fragment!r}"
    return None


@pytest.mark.timeout(900)  # every page of the site in a real browser: minutes, not a hang
def test_every_page_renders_offline_with_working_links(served_site, browser):
    out, base = served_site
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html") if p.name != "404.html")
    assert len(pages) > 80, f"only {len(pages)} pages built"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def route(r):
        if is_loopback(r.request.url):
            r.continue_()
        else:  # recorded and refused: the test never leaves the machine
            outside.append(f"{r.request.url} (from {context.pages[0].url if context.pages else '?'})")
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    broken, unrendered, cut, ids = [], [], [], {}
    answers = 0
    for rel in pages:
        url = f"{base}/{rel}"
        page.goto(url, wait_until="load")
        hrefs = page.eval_on_selector_all("article a[href], article img[src]",
                                          "els => els.map(e => e.getAttribute('href') || e.getAttribute('src'))")
        broken += [f"{rel}: {why}" for why in (target_exists(out, base, url, h, ids) for h in hrefs) if why]
        texts = page.eval_on_selector_all(
            "article details", "els => els.map(d => { d.open = true; const c = d.cloneNode(true);"
            " c.querySelectorAll('pre, code').forEach(e => e.remove()); return c.textContent; })")
        answers += len(texts)
        for text in texts:
            for what, pattern in UNRENDERED:
                if pattern.search(text):
                    unrendered.append(f"{rel}: {what} in {text[:70]!r}")
                    break
        cut += [f"{rel}: {c}" for c in page.evaluate(CUT_OFF_JS)]
    context.close()
    assert not outside, "requests left the machine:\n" + "\n".join(sorted(set(outside))[:20])
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:30])
    assert answers >= 250, f"only {answers} <details> answers found; did the pages change?"
    assert not unrendered, f"{len(unrendered)} answers show raw Markdown:\n" + "\n".join(unrendered[:30])
    assert not cut, f"{len(cut)} blocks are cut off at the page edge:\n" + "\n".join(cut[:30])
    assert not errors, "JavaScript errors:\n" + "\n".join(errors[:10])


@pytest.mark.timeout(900)  # every page of the site in a real browser: minutes, not a hang
def test_an_opened_answer_and_search(served_site, browser):
    out, base = served_site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/phase-02-paged-attention/EXERCISES.html")
    answer = page.locator("article details").nth(1)
    answer.locator("summary").click()
    assert answer.get_attribute("open") is not None
    assert answer.locator("code").count() > 0 and "`" not in answer.inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    answer.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "exercises-answer.png"))
    # Search is client-side: a web worker over the local search index.
    page.goto(f"{base}/index.html")
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("PagedAttention")
    page.wait_for_selector(".md-search-result__item", timeout=15000)
    assert page.locator(".md-search-result__item").count() > 0
    page.close()


@pytest.mark.timeout(900)  # every page of the site in a real browser: minutes, not a hang
def test_long_lines_scroll_on_a_phone_width(served_site, browser):
    """At 390 px almost every code block and diagram is wider than the page."""
    out, base = served_site
    page = browser.new_page(viewport={"width": 390, "height": 800})
    cut, wide = [], 0
    for html in sorted(out.glob("phase-*/*.html")):
        if html.stem not in ("00-guide", "02-mini-build", "EXERCISES"):
            continue
        page.goto(f"{base}/{html.relative_to(out).as_posix()}", wait_until="load")
        page.eval_on_selector_all("article details", "els => els.forEach(d => { d.open = true; })")
        wide += page.evaluate("() => [...document.querySelectorAll('article pre > code')]"
                              ".filter(c => c.scrollWidth > c.clientWidth + 1).length")
        cut += [f"{html.relative_to(out)}: {c}" for c in page.evaluate(CUT_OFF_JS)]
    page.close()
    assert wide > 50, f"only {wide} wide code blocks at 390 px: is the viewport applied?"
    assert not cut, f"{len(cut)} blocks are cut off at 390 px:\n" + "\n".join(cut[:30])
