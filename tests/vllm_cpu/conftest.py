"""Fixtures for the ``upstream`` tests: the pinned vLLM 0.22.1, imported on the CPU, as an
oracle for mini_vllm (and for a learner's lab file).

They need the venv that ``bash tools/vllm_cpu/install.sh`` builds; anywhere else every
test here skips with a one-line reason. The check runs inside the ``vllm_oracle`` fixture,
so collecting these tests never imports torch or vllm.
"""
from __future__ import annotations

import os

import pytest

from course.labkit import REPO_ROOT, load_module_from_path


@pytest.fixture(scope="session")
def vllm_oracle():
    """tools/vllm_cpu/oracle.py, once vLLM's scheduler is known to import."""
    oracle = load_module_from_path(REPO_ROOT / "tools" / "vllm_cpu" / "oracle.py")
    reason = oracle.upstream_missing_reason()
    if reason is not None:
        if os.environ.get("UPSTREAM_REQUIRED") == "1":
            pytest.fail(f"UPSTREAM_REQUIRED=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return oracle
