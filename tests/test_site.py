"""The course website's builder: navigation, Markdown fixes, and the strict build.

The build tests skip without the docs extra (``pip install -e ".[docs]"``); the browser
run is ``tests/test_site_browser.py``. CI runs both in its site step (``.ci/run``).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from course.labkit import REPO_ROOT, load_module_from_path

site = load_module_from_path(REPO_ROOT / "tools" / "build_site.py")
needs_mkdocs = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
                                  reason="needs the docs extra: pip install -e '.[docs]'")
P03 = REPO_ROOT / "phase-03-continuous-batching-scheduler"


def nav_pages(items) -> list[tuple[str, str]]:
    """(title, path) for every page in a nav tree."""
    out = []
    for item in items:
        (title, value), = item.items()
        out += nav_pages(value) if isinstance(value, list) else [(title, value)]
    return out


def phase_entry(phase: Path) -> list:
    return next(iter(site.phase_nav(REPO_ROOT, phase).values()))


def test_details_answers_get_markdown_rendering():
    src = "<details><summary>Solution</summary>\n\n`x` and [a](b.md)\n</details>\n"
    out = site.fix_markdown(src, REPO_ROOT)
    assert out.startswith('<details markdown="1"><summary>'), out
    assert site.fix_markdown(out, REPO_ROOT) == out, "an answer already marked is left alone"


def test_folder_links_point_at_the_readme():
    out = site.fix_markdown("[lab](labs/lab-01-scheduler-step/#tasks)", P03)
    assert out == "[lab](labs/lab-01-scheduler-step/README.md#tasks)"
    assert site.fix_markdown("[x](https://example.org/a/)", P03) == "[x](https://example.org/a/)"


def test_page_title_drops_the_prefix_the_nav_already_shows(tmp_path):
    cases = {"# Lab 03-05 — Decode-latency spikes [CPU-OK]": "05 · Decode-latency spikes [CPU-OK]",
             "# Lab 04-02: the backend-selection matrix": "02 · the backend-selection matrix",
             "# Phase 02 — Mini-build: rebuild `mini_vllm/block_pool.py`": "Mini-build: rebuild mini_vllm/block_pool.py",
             "# Phase 05 mini-build: a simulator": "Mini-build: a simulator",
             "intro\n# Setup": "Setup"}
    for heading, title in cases.items():
        (tmp_path / "p.md").write_text(heading + "\n\nbody\n")
        assert site.page_title(tmp_path / "p.md") == title, heading


def test_nav_titles_are_the_pages_first_headings_not_folder_names():
    pages = nav_pages(site.make_nav(REPO_ROOT))
    assert len(pages) == len({p for _, p in pages}), "a page is listed twice"
    for title, path in pages:
        assert (REPO_ROOT / path).is_file(), f"nav points at a missing file: {path}"
        assert not any(part in title for part in ("lab-0", "lab-1", ".md", "`")), f"{path}: nav title {title!r}"
        if "/labs/lab-" in path:
            assert title == site.page_title(REPO_ROOT / path), path


def test_every_phase_starts_with_its_guide_and_ends_with_the_checks():
    phases = next(item["Phases"] for item in site.make_nav(REPO_ROOT) if "Phases" in item)
    numbers = [next(iter(p)).split(" ")[0] for p in phases]
    assert numbers == sorted(numbers) and numbers[0] == "00"
    for phase in phases:
        paths = [p.rsplit("/", 1)[1] for _, p in nav_pages(next(iter(phase.values()))) if "/labs/" not in p]
        assert paths == ["00-guide.md", "01-deep-dive.md", "02-mini-build.md", "EXERCISES.md", "INTERVIEW.md",
                         "CHEATSHEET.md"], f"{next(iter(phase))}: {paths}"


def test_nav_follows_each_guides_closing_section():
    """The guide's last section is the one statement of the phase's order; the nav obeys it."""
    for phase in sorted(REPO_ROOT.glob("phase-*")):
        labs = sorted(p.name.split("-")[1] for p in (phase / "labs").glob("lab-*"))
        build_first, order = site.phase_order(phase / "00-guide.md", labs)
        items = phase_entry(phase)
        kinds = ["Labs" if "Labs" in i else next(iter(i.values())).rsplit("/", 1)[1] for i in items]
        build, group = kinds.index("02-mini-build.md"), kinds.index("Labs")
        assert (build < group) == build_first, f"{phase.name}: nav {kinds} disagrees with 00-guide.md's closing section"
        lab_paths = [p for _, p in nav_pages(items) if "/labs/lab-" in p]
        assert [p.split("/labs/lab-")[1][:2] for p in lab_paths] == order, phase.name


def test_phase_03_does_labs_01_and_04_before_its_mini_build():
    build_first, order = site.phase_order(P03 / "00-guide.md", ["01", "02", "03", "04", "05", "06"])
    assert not build_first and order == ["01", "02", "05", "04", "06", "03"]
    build = (P03 / "02-mini-build.md").read_text()
    assert "Empty the file" not in build, "emptying mini_vllm/scheduler.py breaks every other test in the repo"
    assert "git worktree add" in build


def test_every_page_in_the_site_has_a_first_heading():
    for rel in site.site_files(REPO_ROOT):
        if rel.endswith(".md"):
            site.first_heading(REPO_ROOT / rel)


@needs_mkdocs
def test_config_loads_nothing_from_another_host(tmp_path):
    config = json.loads(site.write_config(REPO_ROOT, tmp_path / "mkdocs.yml").read_text())
    assert config["theme"]["font"] is False, "Material fetches Google Fonts unless theme.font is false"
    assert not [v for v in config.get("extra_javascript", []) + config["extra_css"] if "://" in v]


def copy_of_the_site_sources(dest: Path) -> Path:
    for rel in site.site_files(REPO_ROOT):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / rel, dest / rel)
    return dest


@needs_mkdocs
@pytest.mark.slow
def test_strict_build_fails_on_a_broken_link_inside_an_answer(tmp_path):
    root = copy_of_the_site_sources(tmp_path / "repo")
    page = root / "phase-02-paged-attention" / "EXERCISES.md"
    page.write_text(page.read_text() + "\n<details><summary>Solution</summary>\n\nSee [gone](no-such-page.md).\n</details>\n")
    config = site.write_config(root, tmp_path / "cfg" / "mkdocs.yml")
    assert site.build(config, tmp_path / "out") != 0, "a broken link inside <details> passed the strict build"
    page.write_text(page.read_text().replace("no-such-page.md", "00-guide.md"))
    assert site.build(config, tmp_path / "out") == 0, "the strict build fails on the repo's own pages"
    assert "00-guide.html" in (tmp_path / "out" / "phase-02-paged-attention" / "EXERCISES.html").read_text()


@needs_mkdocs
@pytest.mark.slow
def test_serve_reloads_when_a_real_source_changes(tmp_path):
    """``serve`` must show an edit to the file in the repo, not to a copy made at start-up."""
    import os
    import socket
    import subprocess
    import time
    import urllib.request

    root = copy_of_the_site_sources(tmp_path / "repo")
    config = site.write_config(root, tmp_path / "cfg" / "mkdocs.yml")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(site.serve_command(config, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})

    def page(deadline: float, want: str | None = None) -> str:
        while time.time() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/GLOSSARY.html", timeout=5).read().decode()
                if want is None or want in text:
                    return text
            except OSError:
                pass
            time.sleep(0.5)
        return ""

    try:
        assert page(time.time() + 120), "mkdocs serve did not come up within 120 s"
        glossary = root / "GLOSSARY.md"
        glossary.write_text(glossary.read_text() + "\nAn edit made while serving: zq-live-reload.\n")
        assert page(time.time() + 90, "zq-live-reload"), "the served page did not change after editing GLOSSARY.md"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
