#!/usr/bin/env python3
"""Check every upstream citation in the course against the pinned vLLM source.

A citation looks like ``vllm/v1/core/block_pool.py:333@0decac0 (BlockPool.get_new_blocks)``:
a path in the upstream tree, a line (or ``L1-L2`` range), the pinned commit, and, in
parentheses, what the line holds. Two kinds of "what":

- a dotted name, ``(BlockPool.get_new_blocks)``: its last part must be *defined* within
  ``WINDOW`` lines of the cited line (``def``/``class``/assignment/annotation, or for
  non-Python files the word itself); ``Class.method`` must sit inside ``class Class``.
- a quoted snippet, ``("num_new_tokens = min(")``: that exact text must appear on the
  cited line or the ``WINDOW`` lines after it.

A file whose first lines say ``check-citations: skip-file`` is left out (the checker's
own tests plant bad citations on purpose). A citation with no parenthesised symbol is an error: a bare line number cannot be
checked after the code moves, which is the whole point of the pin.

Usage:  python tools/check_citations.py [PATH ...] [--upstream DIR]
Exit status 0 when every citation holds, 1 otherwise, 2 when ./upstream is missing.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PIN = "0decac0"
SKIP_MARKER = "check-citations: " + "skip-file"  # split so this file does not match itself
WINDOW = 3
SCANNED_SUFFIXES = {".md", ".py"}
SKIP_DIRS = {".git", "upstream", ".venv", "venv", "node_modules", "__pycache__", "site", "build", "dist", ".hypothesis"}

CITATION = re.compile(
    r"(?P<path>[A-Za-z0-9_][A-Za-z0-9_./-]*\.[A-Za-z0-9]+)"
    r":(?P<line>\d+)(?:-(?P<end>\d+))?@" + PIN +
    r"`?(?:[ \t]*\((?P<sym>\"[^\"\n]+\"|`[^`\n]+`|[A-Za-z_][\w.]*(?:\(\))?)\))?"
)


@dataclass
class Citation:
    source: Path
    source_line: int
    path: str
    line: int
    end: int
    symbol: str | None

    def __str__(self) -> str:
        span = f"{self.line}-{self.end}" if self.end != self.line else f"{self.line}"
        sym = f" ({self.symbol})" if self.symbol else ""
        return f"{self.path}:{span}@{PIN}{sym}"


def find_citations(text: str, source: Path) -> list[Citation]:
    out = []
    for m in CITATION.finditer(text):
        line = int(m.group("line"))
        end = int(m.group("end") or line)
        out.append(Citation(source, text.count("\n", 0, m.start()) + 1, m.group("path"), line, end, m.group("sym")))
    return out


def iter_files(paths: list[Path]):
    for root in paths:
        if root.is_file():
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if p.suffix in SCANNED_SUFFIXES:
                    yield p


@lru_cache(maxsize=None)
def read_lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


@lru_cache(maxsize=None)
def class_spans(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Line spans of every class in a Python file, by class name."""
    try:
        tree = ast.parse(path.read_text(errors="replace"))
    except SyntaxError:
        return {}
    spans: dict[str, list[tuple[int, int]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            spans.setdefault(node.name, []).append((node.lineno, node.end_lineno or node.lineno))
    return spans


def definition_lines(path: Path, dotted: str) -> list[int]:
    """1-based lines of ``path`` where the symbol ``dotted`` is defined."""
    parts = dotted.removesuffix("()").split(".")
    name = parts[-1]
    lines = read_lines(path)
    if path.suffix == ".py":
        pat = re.compile(
            rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b"
            rf"|^\s*(?:self\.)?{re.escape(name)}\s*(?::[^=]*)?=[^=]"
            rf"|^\s*(?:self\.)?{re.escape(name)}\s*:"
        )
    else:
        pat = re.compile(rf"\b{re.escape(name)}\b")
    hits = [i + 1 for i, text in enumerate(lines) if pat.search(text)]
    if path.suffix == ".py" and len(parts) >= 2:
        owner = class_spans(path).get(parts[-2])
        if owner is not None:
            hits = [h for h in hits if any(a < h <= b for a, b in owner)]
        elif parts[-2] == path.stem:
            pass  # ``module.func``: the module is the file itself
        else:
            hits = []
    return hits


def snippet_lines(path: Path, snippet: str) -> list[int]:
    return [i + 1 for i, text in enumerate(read_lines(path)) if snippet in text]


def check(c: Citation, upstream: Path) -> str | None:
    """None if the citation holds, else what is wrong (with the nearest correct line)."""
    target = upstream / c.path
    if not target.is_file():
        return f"no such file in upstream: {c.path}"
    n = len(read_lines(target))
    if not 1 <= c.line <= n or c.end < c.line or c.end > n:
        return f"line {c.line if c.line > n else c.end} is past the end of {c.path} ({n} lines)"
    if c.symbol is None:
        return "names no symbol: write path:LINE@0decac0 (Symbol) or (\"snippet\")"
    sym = c.symbol
    if sym[0] in "\"`":
        text = sym[1:-1]
        hits = snippet_lines(target, text)
        ok = any(c.line <= h <= c.end + WINDOW for h in hits)
        what = f"text {text!r}"
    else:
        hits = definition_lines(target, sym)
        ok = any(c.line - WINDOW <= h <= c.end + WINDOW for h in hits)
        what = f"a definition of {sym}"
    if ok:
        return None
    if not hits:
        return f"{what} is nowhere in {c.path}"
    nearest = min(hits, key=lambda h: abs(h - c.line))
    return f"{what} is not at line {c.line}; nearest: {c.path}:{nearest}@{PIN}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--upstream", type=Path, default=None, help="upstream checkout (default: ./upstream)")
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    upstream = args.upstream or repo / "upstream"
    if not (upstream / "vllm").is_dir():
        print(f"upstream source not found at {upstream}: run python tools/fetch_upstream.py", file=sys.stderr)
        return 2
    paths = args.paths or [repo]
    total = bad = 0
    for f in iter_files(paths):
        text = f.read_text(errors="replace")
        if SKIP_MARKER in text[:2000]:
            continue
        for c in find_citations(text, f):
            total += 1
            problem = check(c, upstream)
            if problem:
                bad += 1
                print(f"{f}:{c.source_line}: {c}: {problem}")
    print(f"{total} citations checked, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
