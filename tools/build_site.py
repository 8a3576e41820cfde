#!/usr/bin/env python3
"""Build the course website from the repo's own Markdown (MkDocs + Material).

    python tools/build_site.py build            # -> site/ (strict: a broken link fails)
    python tools/build_site.py serve            # preview on http://127.0.0.1:8000

The repo is laid out for readers of the source tree, so the site is built from a staging
copy (``build/site-src``): the top-level pages, every phase's Markdown in reading order,
the plots the labs generate, and the Python files the pages link to (served as plain
files). The navigation is generated from the phase folders, so a new phase or lab appears
without editing a config. Needs the ``docs`` extra: ``pip install -e ".[docs]"``.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "build" / "site-src"
TOP_PAGES = [("Setup", "SETUP.md"), ("Upstream pin", "UPSTREAM_PIN.md"), ("Glossary", "GLOSSARY.md"),
             ("Career map", "CAREER.md"), ("Publishing", "PUBLISHING.md")]
PHASE_PAGES = [("Guide", "00-guide.md"), ("Deep dive", "01-deep-dive.md"), ("Mini-build", "02-mini-build.md")]
PHASE_TAIL = [("Exercises", "EXERCISES.md"), ("Interview", "INTERVIEW.md"), ("Cheatsheet", "CHEATSHEET.md")]
ASSETS = {".png", ".svg", ".py", ".json", ".jsonl", ".txt", ".toml"}
SKIP = {"__pycache__", ".pytest_cache", ".hypothesis"}


def title_of(md: Path, fallback: str) -> str:
    for line in md.read_text(errors="replace").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s#]+?)/?(#[^)\s]*)?\)")


def point_folder_links_at_readmes(md: Path) -> None:
    """``[lab](lab-01-x/)`` reads well on a code host, which shows the folder's README;
    MkDocs needs the page itself, so such links get ``README.md`` appended."""
    text = md.read_text(errors="replace")

    def fix(m: re.Match) -> str:
        target, anchor = m.group(1), m.group(2) or ""
        folder = (md.parent / target)
        if folder.is_dir() and (folder / "README.md").is_file():
            return f"]({target}/README.md{anchor})"
        return m.group(0)

    new = LINK.sub(fix, text)
    if new != text:
        md.write_text(new)


def stage(ROOT: Path = ROOT, STAGE: Path = STAGE) -> list:
    """Copy what the site shows into STAGE and return the MkDocs nav."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir(parents=True)
    shutil.copy(ROOT / "README.md", STAGE / "index.md")
    nav: list = [{"Home": "index.md"}]
    for label, name in TOP_PAGES:
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, STAGE / name)
            nav.append({label: name})
    for folder in ("mini_vllm", "tools", "tests"):
        for f in (ROOT / folder).rglob("*"):
            if f.is_file() and f.suffix in ASSETS | {".md", ".sh"} and not SKIP & set(f.parts):
                dest = STAGE / f.relative_to(ROOT)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, dest)
    for name in ("pyproject.toml", "conftest.py"):
        shutil.copy(ROOT / name, STAGE / name)
    phases = []
    for phase in sorted(ROOT.glob("phase-*")):
        if not phase.is_dir():
            continue
        for f in phase.rglob("*"):
            if f.is_file() and (f.suffix == ".md" or f.suffix in ASSETS) and not SKIP & set(f.parts):
                dest = STAGE / f.relative_to(ROOT)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, dest)
        rel = phase.relative_to(ROOT)
        items = [{label: f"{rel}/{name}"} for label, name in PHASE_PAGES if (phase / name).exists()]
        labs = phase / "labs"
        if (labs / "README.md").exists():
            lab_items: list = [{"Overview": f"{rel}/labs/README.md"}]
            for lab in sorted(labs.glob("lab-*")):
                if (lab / "README.md").exists():
                    lab_items.append({lab.name: f"{rel}/labs/{lab.name}/README.md"})
            items.append({"Labs": lab_items})
        items += [{label: f"{rel}/{name}"} for label, name in PHASE_TAIL if (phase / name).exists()]
        guide = phase / "00-guide.md"
        number = phase.name.split("-")[1]
        name = title_of(guide, phase.name) if guide.exists() else phase.name
        short = re.sub(r"^Phase \d+\s*[—:-]\s*", "", name)
        phases.append({f"{number} · {short}": items})
    nav.append({"Phases": phases})
    appendix = []
    for md in sorted((ROOT / "appendix").glob("*.md")):
        (STAGE / "appendix").mkdir(exist_ok=True)
        shutil.copy(md, STAGE / "appendix" / md.name)
        appendix.append({title_of(md, md.stem): f"appendix/{md.name}"})
    if appendix:
        nav.append({"Appendix": appendix})
    for md in STAGE.rglob("*.md"):
        point_folder_links_at_readmes(md)
    return nav


def write_config(nav: list, STAGE: Path = STAGE, path: Path = ROOT / "build" / "mkdocs.yml") -> Path:
    import json

    config = {
        "site_name": "vLLM Mastery",
        "site_description": "A lab-driven course on vLLM v1 internals, pinned to v0.22.1 @ 0decac0",
        "docs_dir": str(STAGE),
        "use_directory_urls": False,
        "theme": {"name": "material", "features": ["navigation.sections", "navigation.indexes", "navigation.footer",
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
        "nav": nav,
    }
    path.write_text(json.dumps(config, indent=1))  # JSON is valid YAML
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("build", "serve"))
    ap.add_argument("--site-dir", type=Path, default=ROOT / "site")
    ap.add_argument("--no-strict", action="store_true", help="build: report broken links without failing")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    config = write_config(stage())
    if args.command == "build":
        return build(config, args.site_dir, strict=not args.no_strict)
    else:
        cmd = [sys.executable, "-m", "mkdocs", "serve", "-f", str(config), "-a", f"127.0.0.1:{args.port}"]
        return subprocess.call(cmd, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


if __name__ == "__main__":
    sys.exit(main())
