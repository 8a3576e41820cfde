#!/usr/bin/env python3
"""Build the course website from the repo's own Markdown (MkDocs + Material).

    python tools/build_site.py build            # -> site/ (strict: a broken link fails)
    python tools/build_site.py serve            # preview on http://127.0.0.1:8000, reloads on edits

There is no copy of the pages. This file is also the MkDocs hook module
(``hooks:`` in the generated ``build/mkdocs.yml``), and its hooks read the repo in place:

- ``on_config`` builds the navigation from the phase folders, with each page's first
  heading as its title and each phase in the order its guide's last section prescribes;
- ``on_files`` adds the repo's pages, plots and linked source files to the site;
- ``on_page_markdown`` lets Markdown inside ``<details>`` answers render (so MkDocs also
  checks their links) and points folder links at the folder's README;
- ``on_serve`` watches the real sources, so an edit shows on the next reload.

The theme loads nothing from another host (``theme.font: false``: system fonts), so a
page works offline. Needs the ``docs`` extra: ``pip install -e ".[docs]"``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_PAGES = ["SETUP.md", "UPSTREAM_PIN.md", "GLOSSARY.md", "CAREER.md", "PUBLISHING.md"]
PHASE_HEAD = ["00-guide.md", "01-deep-dive.md"]
PHASE_TAIL = ["EXERCISES.md", "INTERVIEW.md", "CHEATSHEET.md"]
ASSETS = {".png", ".svg", ".py", ".json", ".jsonl", ".txt", ".toml", ".sh"}
CODE_DIRS = ("mini_vllm", "tools", "tests")
SKIP = {"__pycache__", ".pytest_cache", ".hypothesis"}
CSS_URI = "assets/course.css"
# Long code lines and ASCII diagrams scroll inside their block; wide tables scroll too.
CSS = """\
.md-typeset pre > code { white-space: pre; overflow-x: auto; word-break: normal; overflow-wrap: normal; }
.md-typeset details pre > code { white-space: pre; }
.md-typeset__table, .md-typeset__scrollwrap { max-width: 100%; overflow-x: auto; }
"""


# --------------------------------------------------------------------------- pages

def first_heading(md: Path) -> str:
    """The text of a page's first ``# `` heading, Markdown marks removed (nav shows plain text)."""
    for line in md.read_text(errors="replace").splitlines():
        if line.startswith("# "):
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line[2:].strip())
            return text.replace("`", "").replace("**", "").strip()
    raise ValueError(f"{md}: no '# ' heading; the site takes each page's title from it")


def page_title(md: Path) -> str:
    """Nav title: the first heading without the 'Phase NN —' / 'Lab NN-MM —' prefix the
    nav already shows (``Lab 03-05 — Decode-latency spikes`` -> ``05 · Decode-latency spikes``)."""
    text = first_heading(md)
    lab = re.match(r"Lab \d+-(\d+)\s*[—:-]?\s*(.*)", text)
    if lab:
        return f"{lab.group(1)} · {lab.group(2)}"
    text = re.sub(r"^Phase \d+\s*(?:[—:-]\s*)?", "", text)
    return text[:1].upper() + text[1:]


def site_files(root: Path) -> list[str]:
    """Every file the site shows, as repo-relative POSIX paths."""
    out = ["README.md"] + [p for p in TOP_PAGES if (root / p).is_file()]
    out += [p for p in ("pyproject.toml", "conftest.py") if (root / p).is_file()]
    folders = [root / d for d in CODE_DIRS] + sorted(root.glob("phase-*")) + [root / "appendix"]
    for folder in folders:
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if f.is_file() and (f.suffix in ASSETS or f.suffix == ".md") and not SKIP & set(f.parts):
                out.append(f.relative_to(root).as_posix())
    return out


# --------------------------------------------------------------------------- navigation

def what_you_do(guide: Path) -> str:
    """The guide's closing section ('What you do in this phase', 'Your path ...', 'Next')."""
    text = guide.read_text(errors="replace")
    parts = re.split(r"^## ", text, flags=re.M)
    for part in reversed(parts[1:]):
        if re.match(r"[\d. ]*(what you|your path|next)", part, flags=re.I):
            return part
    return parts[-1]


CHAIN = re.compile(r"\b\d\d\b(?:\s*(?:→|->|,)\s*\b\d\d\b){2,}")


def phase_order(guide: Path, lab_numbers: list[str]) -> tuple[bool, list[str]]:
    """From the guide's closing section: does the mini-build come before the labs, and in
    which order are the labs done? Labs it does not name follow in folder order."""
    section = what_you_do(guide)
    build_at = section.find("02-mini-build.md")
    labs_at = min([i for i in (section.find("labs/"), section.find("lab-0"), section.find("lab-1")) if i >= 0],
                  default=-1)
    build_first = labs_at < 0 or (0 <= build_at < labs_at)
    hits = [(m.start(), re.findall(r"\d\d", m.group(0))) for m in CHAIN.finditer(section)]
    hits += [(m.start(), [m.group(1)]) for m in re.finditer(r"lab-(\d\d)", section)]
    order: list[str] = []
    for _, numbers in sorted(hits):
        order += [n for n in numbers if n in lab_numbers and n not in order]
    return build_first, order + [n for n in lab_numbers if n not in order]


def phase_nav(root: Path, phase: Path) -> dict:
    rel = phase.relative_to(root).as_posix()
    guide = phase / "00-guide.md"
    items: list = []
    if guide.exists():
        items.append({"Guide": f"{rel}/00-guide.md"})
    if (phase / "01-deep-dive.md").exists():
        items.append({page_title(phase / "01-deep-dive.md"): f"{rel}/01-deep-dive.md"})
    labs = {lab.name.split("-")[1]: lab for lab in sorted((phase / "labs").glob("lab-*"))
            if (lab / "README.md").exists()}
    build_first, order = phase_order(guide, list(labs)) if guide.exists() else (True, list(labs))
    lab_items: list = []
    if (phase / "labs" / "README.md").exists():
        lab_items.append({"Overview": f"{rel}/labs/README.md"})
    lab_items += [{page_title(labs[n] / "README.md"): f"{rel}/labs/{labs[n].name}/README.md"} for n in order]
    build = [{page_title(phase / "02-mini-build.md"): f"{rel}/02-mini-build.md"}] \
        if (phase / "02-mini-build.md").exists() else []
    lab_group = [{"Labs": lab_items}] if lab_items else []
    items += build + lab_group if build_first else lab_group + build
    items += [{page_title(phase / n): f"{rel}/{n}"} for n in PHASE_TAIL if (phase / n).exists()]
    number = phase.name.split("-")[1]
    name = re.sub(r"^Phase \d+\s*[—:-]?\s*", "", first_heading(guide)) if guide.exists() else phase.name
    return {f"{number} · {name}": items}


def make_nav(root: Path = ROOT) -> list:
    nav: list = [{"Home": "README.md"}]
    nav += [{first_heading(root / p): p} for p in TOP_PAGES if (root / p).is_file()]
    nav.append({"Phases": [phase_nav(root, p) for p in sorted(root.glob("phase-*")) if p.is_dir()]})
    appendix = [{first_heading(md): md.relative_to(root).as_posix()} for md in sorted((root / "appendix").glob("*.md"))]
    if appendix:
        nav.append({"Appendix": appendix})
    return nav


# --------------------------------------------------------------------------- Markdown fixes

LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s#]+?)/?(#[^)\s]*)?\)")
DETAILS = re.compile(r"<details(?![^>]*\bmarkdown=)([^>]*)>")


def fix_markdown(text: str, page_dir: Path) -> str:
    """Two source conventions the site needs spelled out:

    - ``<details>`` answers: Markdown inside raw HTML stays literal unless the element
      carries ``markdown="1"`` (the ``md_in_html`` extension); with it, code, bold and
      links render, and MkDocs validates those links like any other.
    - ``[lab](lab-01-x/)`` reads well on a code host, which shows the folder's README;
      MkDocs needs the page itself, so such links get ``README.md`` appended.
    """
    text = DETAILS.sub(r'<details markdown="1"\1>', text)

    def fix(m: re.Match) -> str:
        target, anchor = m.group(1), m.group(2) or ""
        folder = page_dir / target
        if folder.is_dir() and (folder / "README.md").is_file():
            return f"]({target}/README.md{anchor})"
        return m.group(0)

    return LINK.sub(fix, text)


# --------------------------------------------------------------------------- MkDocs hooks

def _root(config) -> Path:
    return Path(config["extra"].get("repo_root", ROOT))


def on_config(config):
    config["nav"] = make_nav(_root(config))
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    root = _root(config)
    for rel in site_files(root):
        files.append(File(rel, str(root), config["site_dir"], config["use_directory_urls"]))
    files.append(File.generated(config, CSS_URI, content=CSS))
    return files


def on_page_markdown(markdown, page, config, files):
    return fix_markdown(markdown, Path(page.file.abs_src_path).parent)


def on_serve(server, config, builder):
    root = _root(config)
    server.watch(str(root), recursive=False)  # README.md, SETUP.md, ... (not .venv or upstream/)
    for d in list(CODE_DIRS) + ["appendix"] + [p.name for p in sorted(root.glob("phase-*"))]:
        if (root / d).is_dir():
            server.watch(str(root / d))
    return server


# --------------------------------------------------------------------------- build / serve

def write_config(root: Path = ROOT, path: Path | None = None) -> Path:
    """Write the MkDocs config (JSON, which is valid YAML) and return its path. ``docs_dir``
    is an empty folder: every page comes from ``root`` through the hooks above."""
    path = path or root / "build" / "mkdocs.yml"
    docs = path.parent / "site-empty-docs"
    docs.mkdir(parents=True, exist_ok=True)
    config = {
        "site_name": "vLLM Mastery",
        "site_description": "A lab-driven course on vLLM v1 internals, pinned to v0.22.1 @ 0decac0",
        "docs_dir": str(docs),
        "use_directory_urls": False,
        "hooks": [str(Path(__file__).resolve())],
        "extra": {"repo_root": str(root), "generator": False},
        "extra_css": [CSS_URI],
        "theme": {"name": "material", "font": False,
                  "features": ["navigation.sections", "navigation.indexes", "navigation.footer",
                               "search.highlight", "content.code.copy"],
                  "palette": {"scheme": "default", "primary": "indigo"}},
        "plugins": ["search"],
        "markdown_extensions": ["tables", "admonition", "attr_list", "md_in_html", "footnotes",
                                {"toc": {"permalink": True}},
                                {"pymdownx.highlight": {"anchor_linenums": True}},
                                "pymdownx.superfences", "pymdownx.inlinehilite", "pymdownx.details"],
        "validation": {"links": {"not_found": "warn", "absolute_links": "info", "unrecognized_links": "warn",
                                 "anchors": "warn"},
                       "nav": {"omitted_files": "info", "not_found": "warn"}},
    }
    path.write_text(json.dumps(config, indent=1))
    return path


def build(config: Path, site_dir: Path, strict: bool = True) -> int:
    """Run ``mkdocs build``; in strict mode any warning (a broken link, a missing page) fails."""
    # Not -q: mkdocs counts warnings for --strict only at its normal log level.
    cmd = [sys.executable, "-m", "mkdocs", "build", "-f", str(config), "--site-dir", str(Path(site_dir).resolve())]
    if strict:
        cmd.append("--strict")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith(("WARNING", "ERROR", "Aborted", "Traceback")) or "Error" in line:
            print(line)
    print(f"site built into {site_dir}" if proc.returncode == 0 else f"site build FAILED (exit {proc.returncode})")
    return proc.returncode


def serve_command(config: Path, port: int) -> list[str]:
    """``mkdocs serve`` on 127.0.0.1 only; the hooks make it watch the real sources."""
    return [sys.executable, "-m", "mkdocs", "serve", "-f", str(config), "-a", f"127.0.0.1:{port}"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("build", "serve"))
    ap.add_argument("--site-dir", type=Path, default=ROOT / "site")
    ap.add_argument("--no-strict", action="store_true", help="build: report broken links without failing")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    config = write_config()
    if args.command == "build":
        return build(config, args.site_dir, strict=not args.no_strict)
    return subprocess.call(serve_command(config, args.port), env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


if __name__ == "__main__":
    sys.exit(main())
