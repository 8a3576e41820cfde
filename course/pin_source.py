"""Run a few functions of the pinned vLLM source on a CPU, without importing vllm.

Some upstream modules hold pure Python (a tool parser, the incremental detokenizer) but
import half of vLLM (torch, transformers, pydantic models) at the top. A lab test that wants
the pin's own code as its oracle can execute the file from ``upstream/`` with its
top-level imports removed and the names it needs supplied by the test (small stand-ins for
protocol classes, a logger). The code under test is then exactly the pin's text; only its
imports are replaced. Tests that use this are marked ``upstream`` and skip when
``upstream/`` is not checked out (``python tools/fetch_upstream.py upstream``).
"""
from __future__ import annotations

import ast
from pathlib import Path

UPSTREAM = Path(__file__).resolve().parents[1] / "upstream"


def upstream_available() -> bool:
    return (UPSTREAM / "vllm").is_dir()


def exec_without_imports(relpath: str, provided: dict, only: tuple[str, ...] | None = None,
                         root: Path = UPSTREAM) -> dict:
    """Execute ``upstream/<relpath>`` with every top-level ``import``/``from`` statement
    removed, in a namespace that starts as ``provided``; return the namespace. With
    ``only``, keep just the top-level functions and classes of those names. A name the
    code uses but ``provided`` lacks fails with NameError when the code reaches it."""
    path = Path(root) / relpath
    tree = ast.parse(path.read_text(), str(path))
    body = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    if only is not None:
        body = [node for node in body if getattr(node, "name", None) in only]
        missing = set(only) - {node.name for node in body}
        if missing:
            raise LookupError(f"{relpath} defines no {sorted(missing)} at the top level")
    tree.body = body
    namespace = {"__name__": f"pin:{relpath}", **provided}
    exec(compile(tree, f"{path} (imports removed)", "exec"), namespace)
    return namespace
