"""The lab harness: load a learner's file by path, and check the lab contract.

Every lab folder (``phase-NN-*/labs/lab-NN-*/``) holds ``starter.py`` (the learner's
work), ``solution.py`` (the reference) and ``test_lab.py`` (the spec). Tests never
import either file directly; they go through :func:`load_lab`, which picks the file
named by the ``LAB_IMPL`` environment variable and imports it *by path*. Lab folders
have hyphens in their names and are not packages, so a normal import could not reach
them anyway, and loading by path keeps two labs' ``solution.py`` from colliding.

The second half of this module is the contract checker behind ``tests/`` and
``python -m course.grade``: starter and solution expose the same API, every stub
raises ``NotImplementedError`` with a hint, and a lab's tests fail on its starter.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from mini_vllm.config import load_module_from_path  # one loader for lab files, shared with the engine seams

VALID_IMPLS = ("solution", "starter")
LAB_FILES = ("README.md", "starter.py", "solution.py", "test_lab.py")
REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY_MODULES = ("torch", "triton", "vllm")


class LabImplError(ValueError):
    """``LAB_IMPL`` holds something other than ``solution`` or ``starter``."""


def get_lab_impl(value: str | None = None) -> str:
    """Return the implementation to load: ``solution`` unless ``LAB_IMPL`` says otherwise."""
    raw = os.environ.get("LAB_IMPL", "") if value is None else value
    impl = raw.strip().lower() or "solution"
    if impl not in VALID_IMPLS:
        raise LabImplError(
            f"LAB_IMPL={raw!r} is not a valid choice; use one of: "
            + ", ".join(VALID_IMPLS)
            + " (for example: LAB_IMPL=starter pytest <lab folder>)"
        )
    return impl


def load_lab(where: Path | str, impl: str | None = None) -> ModuleType:
    """Load ``starter.py`` or ``solution.py`` from the folder of ``where``.

    ``where`` is a test file (pass ``__file__``) or a lab folder. ``impl`` overrides
    ``LAB_IMPL``.
    """
    where = Path(where).resolve()
    folder = where if where.is_dir() else where.parent
    impl = get_lab_impl() if impl is None else get_lab_impl(impl)
    return load_module_from_path(folder / f"{impl}.py")


# --------------------------------------------------------------------------- contract


def find_labs(root: Path | str = REPO_ROOT) -> list[Path]:
    """Every ``phase-*/labs/lab-*`` folder under ``root``, sorted."""
    root = Path(root)
    return sorted(p for p in root.glob("phase-*/labs/lab-*") if p.is_dir())


def public_api(module: ModuleType) -> dict[str, object]:
    """Functions and classes the module defines itself (not ones it imports)."""
    api = {}
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) == module.__name__:
            api[name] = obj
    return api


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "<no signature>"


def _class_members(cls: type) -> dict[str, str]:
    members = {}
    for name, obj in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__call__"):
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if inspect.isfunction(obj):
            members[name] = _signature(obj)
        elif isinstance(obj, property):
            members[name] = "<property>"
    return members


def compare_api(solution: ModuleType, starter: ModuleType) -> list[str]:
    """Differences between the two modules' public names and signatures."""
    problems = []
    sol, sta = public_api(solution), public_api(starter)
    for name in sorted(set(sol) - set(sta)):
        problems.append(f"starter is missing public name {name!r}")
    for name in sorted(set(sta) - set(sol)):
        problems.append(f"starter defines {name!r}, which the solution does not")
    for name in sorted(set(sol) & set(sta)):
        a, b = sol[name], sta[name]
        if inspect.isclass(a) != inspect.isclass(b):
            problems.append(f"{name}: class in one file, function in the other")
        elif inspect.isclass(a):
            ma, mb = _class_members(a), _class_members(b)
            for m in sorted(set(ma) | set(mb)):
                if ma.get(m) != mb.get(m):
                    problems.append(f"{name}.{m}: solution {ma.get(m, 'absent')} vs starter {mb.get(m, 'absent')}")
        elif _signature(a) != _signature(b):
            problems.append(f"{name}: solution {_signature(a)} vs starter {_signature(b)}")
    return problems


def starter_stub_problems(starter_path: Path | str) -> list[str]:
    """Every ``raise NotImplementedError`` must carry a hint; there must be at least one."""
    tree = ast.parse(Path(starter_path).read_text(), filename=str(starter_path))
    raises = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc
            target = exc.func if isinstance(exc, ast.Call) else exc
            if isinstance(target, ast.Name) and target.id == "NotImplementedError":
                raises.append(node)
    if not raises:
        return ["starter.py has no `raise NotImplementedError(...)` stub: what is the learner to write?"]
    problems = []
    for node in raises:
        exc = node.exc
        hint = None
        if isinstance(exc, ast.Call) and exc.args:
            arg = exc.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                hint = arg.value
            elif isinstance(arg, ast.JoinedStr):
                hint = "<f-string>"
        if not hint or len(hint.strip()) < 8:
            problems.append(f"starter.py:{node.lineno}: NotImplementedError without a hint for the learner")
    return problems


@dataclass
class TestRun:
    """Per-test outcomes of one pytest subprocess run."""

    outcomes: dict[str, str] = field(default_factory=dict)  # nodeid -> passed/failed/skipped
    details: dict[str, str] = field(default_factory=dict)  # nodeid -> skip reason or first error line
    deselected: dict[str, str] = field(default_factory=dict)  # nodeid -> "gpu" or "triton"
    heavy_imports: list[str] = field(default_factory=list)
    returncode: int = 0
    output: str = ""

    def for_lab(self, lab_dir: Path, which: str = "outcomes") -> dict[str, str]:
        """``outcomes`` (or ``details``, ``deselected``) of the tests in ``lab_dir``."""
        lab_dir = Path(lab_dir).resolve()
        return {n: o for n, o in getattr(self, which).items() if _nodeid_path(n).resolve().parent == lab_dir}


def _nodeid_path(nodeid: str) -> Path:
    return Path(nodeid.split("::", 1)[0])


def run_tests(paths: list[Path | str], impl: str, markexpr: str = "not gpu", cwd: Path | str | None = None,
              extra_env: dict[str, str] | None = None, timeout: float = 600,
              triton_interpret: bool = False) -> TestRun:
    """Run pytest on ``paths`` in a subprocess with ``LAB_IMPL=impl``; collect outcomes.

    ``TRITON_INTERPRET`` is dropped from the environment unless ``triton_interpret``: an
    inherited setting would make a CPU run import torch.
    """
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "outcomes.json"
        env = dict(os.environ, LAB_IMPL=impl, MINI_VLLM_OUTCOMES=str(report))
        if triton_interpret:
            env["TRITON_INTERPRET"] = "1"
        else:
            env.pop("TRITON_INTERPRET", None)
        env.update(extra_env or {})
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "course.pytest_outcomes",
               "-p", "no:cacheprovider", "--import-mode=importlib", "-m", markexpr,
               "--tb=no", "-o", "console_output_style=classic", *map(str, paths)]
        proc = subprocess.run(cmd, cwd=str(cwd or REPO_ROOT), env=env, capture_output=True, text=True,
                              timeout=timeout)
        run = TestRun(returncode=proc.returncode, output=proc.stdout + proc.stderr)
        if report.exists():
            data = json.loads(report.read_text())
            base = Path(data["rootdir"])
            run.outcomes = {str(base / k): v for k, v in data["outcomes"].items()}
            run.details = {str(base / k): v for k, v in data.get("details", {}).items()}
            run.deselected = {str(base / k): v for k, v in data.get("deselected", {}).items()}
            run.heavy_imports = data["heavy_imports"]
        return run


def starter_problems(lab_dir: Path, starter_run: TestRun) -> list[str]:
    """A lab's tests must fail on its starter: report every test that passed anyway."""
    outcomes = starter_run.for_lab(lab_dir)
    ran = {n: o for n, o in outcomes.items() if o != "skipped"}
    problems = [f"{n.split('::', 1)[1]} passes on the unimplemented starter: it tests nothing"
                for n, o in sorted(ran.items()) if o == "passed"]
    return problems


def check_lab_static(lab_dir: Path) -> list[str]:
    """File set, API parity and stub hints: everything that needs no test run."""
    lab_dir = Path(lab_dir)
    missing = [f for f in LAB_FILES if not (lab_dir / f).is_file()]
    if missing:
        return [f"missing {', '.join(missing)}"]
    problems = starter_stub_problems(lab_dir / "starter.py")
    sol = load_module_from_path(lab_dir / "solution.py")
    sta = load_module_from_path(lab_dir / "starter.py")
    problems += compare_api(sol, sta)
    return problems
