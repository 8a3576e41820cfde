"""Two packages, one direction: ``course`` may import ``mini_vllm``, never the reverse.

The engine is what a learner holds next to upstream's source, so it carries no harness
code and no GPU stack: every ``mini_vllm`` module runs on numpy alone.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from course.labkit import REPO_ROOT

import pytest
# Checks of the package boundaries: a maintainer's concern, run by .ci/run (pytest --maintainer),
# not on every learner's `pytest -m "not gpu"`.
pytestmark = pytest.mark.maintainer


ENGINE = REPO_ROOT / "mini_vllm"
FORBIDDEN = ("course", "torch", "triton", "vllm")
TEST_ONLY = ("pytest", "hypothesis")


def imported_roots(path: Path) -> dict[str, int]:
    """Top-level package name of every import in the file (function-local ones too) -> first line."""
    roots: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            roots.setdefault(name.split(".")[0], node.lineno)
    return roots


def engine_files() -> list[Path]:
    return sorted(ENGINE.glob("*.py"))


def test_imported_roots_sees_function_local_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import numpy as np\ndef f():\n    from course.labkit import load_lab\n    import torch.nn\n")
    assert imported_roots(f) == {"numpy": 1, "course": 3, "torch": 4}


def test_no_engine_module_imports_the_course_package_or_the_gpu_stack():
    problems = []
    for path in engine_files():
        allowed_extra = TEST_ONLY if path.name.startswith("test_") else ()
        for root, line in imported_roots(path).items():
            if root in FORBIDDEN or (root in TEST_ONLY and root not in allowed_extra):
                problems.append(f"mini_vllm/{path.name}:{line} imports {root}")
    assert not problems, ("the engine package imports only numpy and itself (test files may add "
                          "pytest and hypothesis):\n  " + "\n  ".join(problems))


def test_importing_every_engine_module_loads_neither_torch_nor_course():
    modules = [f"mini_vllm.{p.stem}" for p in engine_files()
               if not p.name.startswith("test_") and p.stem != "__main__"]
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules} & {'torch', 'course', 'triton', 'vllm'})))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"importing {len(modules)} engine modules loaded {proc.stdout.strip()}"


# Scripts a learner runs after `pip install -e .`: they import the installed packages.
# (tools/gpu_box/probe.py is the exception: it runs on a bare GPU box before any install.)
INSTALLED_SCRIPTS = ["tools/bench_engine.py", "tools/bench_hf_model.py", "tools/gpu_box/startup_profile.py"]


def test_installed_scripts_do_not_edit_sys_path():
    for script in INSTALLED_SCRIPTS:
        tree = ast.parse((REPO_ROOT / script).read_text())
        edits = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("insert", "append")
                 and isinstance(n.value, ast.Attribute) and n.value.attr == "path"
                 and isinstance(n.value.value, ast.Name) and n.value.value.id == "sys"]
        assert not edits, f"{script}:{edits[0]} edits sys.path; import the installed mini_vllm/course instead"
