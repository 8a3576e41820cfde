"""A pytest plugin that writes each test's outcome to JSON (``-p course.pytest_outcomes``).

Used by the lab contract checker and the grader, which run pytest in a subprocess with
``LAB_IMPL=starter`` and need per-test results. It also records whether torch, triton or
vllm got imported, because ``pytest -m "not gpu"`` promises never to import them.
"""
from __future__ import annotations

import json
import os
import sys

_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report):
    prev = _outcomes.get(report.nodeid)
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and prev is None:
        _outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and report.passed and prev is None:
        _outcomes[report.nodeid] = "passed"


def pytest_collectreport(report):
    if report.failed:
        _outcomes[report.nodeid] = "failed"


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("MINI_VLLM_OUTCOMES")
    if not path:
        return
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "triton", "vllm") and "." not in m)
    with open(path, "w") as fh:
        json.dump({"rootdir": str(session.config.rootpath), "outcomes": _outcomes, "heavy_imports": heavy}, fh)
