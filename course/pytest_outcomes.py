"""A pytest plugin that writes each test's outcome to JSON (``-p course.pytest_outcomes``).

Used by the lab contract checker and the grader, which run pytest in a subprocess with
``LAB_IMPL=starter`` and need per-test results. Beside each outcome it keeps one line of
why (the skip reason, the first line of the error: for an untouched stub that is its
``TODO`` hint), and the tests ``-m`` deselected with what they needed (``gpu``, or
``triton`` for a kernel test the CPU interpreter could run), so every grader row can
explain itself. It also records whether torch, triton or vllm got imported, because
``pytest -m "not gpu"`` promises never to import them.
"""
from __future__ import annotations

import json
import os
import sys

import pytest

_outcomes: dict[str, str] = {}
_details: dict[str, str] = {}
_deselected: dict[str, str] = {}


def _first_line(text: str, limit: int = 160) -> str:
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and item.nodeid not in _details:
        exc = call.excinfo.value
        if isinstance(exc, SyntaxError):
            message = f"{type(exc).__name__} in {os.path.basename(exc.filename or '?')} line {exc.lineno}: {exc.msg}"
        elif isinstance(exc, (AssertionError, NotImplementedError)) and str(exc):
            message = str(exc)
        else:
            message = call.excinfo.exconly()
        _details[item.nodeid] = _first_line(message)


def pytest_runtest_logreport(report):
    prev = _outcomes.get(report.nodeid)
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and prev is None:
        _outcomes[report.nodeid] = "skipped"
        if isinstance(report.longrepr, tuple):
            _details[report.nodeid] = _first_line(str(report.longrepr[2]).removeprefix("Skipped: "))
    elif report.when == "call" and report.passed and prev is None:
        _outcomes[report.nodeid] = "passed"


def pytest_collectreport(report):
    if report.failed:
        _outcomes[report.nodeid] = "failed"
        text = str(report.longrepr)
        errors = [ln.strip() for ln in text.splitlines() if ln.startswith("E ")]
        _details[report.nodeid] = _first_line(errors[-1][1:] if errors else text.splitlines()[-1])


def pytest_deselected(items):
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        _deselected[item.nodeid] = "triton" if "triton_device" in fixtures else "gpu"


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("MINI_VLLM_OUTCOMES")
    if not path:
        return
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "triton", "vllm") and "." not in m)
    with open(path, "w") as fh:
        json.dump({"rootdir": str(session.config.rootpath), "outcomes": _outcomes, "details": _details,
                   "deselected": _deselected, "heavy_imports": heavy}, fh)
