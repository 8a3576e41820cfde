"""Root conftest: the lab harness and the shared GPU fixtures.

- ``LAB_IMPL`` picks which file every lab test runs against: ``solution`` (default) or
  ``starter``. Any other value stops pytest before it collects anything.
- ``lab``: the chosen module, loaded by path from the requesting test's own folder.
- ``gpu_device``: ``"cuda"`` when CUDA, torch, triton and vllm are all present; a
  one-line skip otherwise. ``triton_device``: a CUDA GPU, or Triton's CPU interpreter
  when ``TRITON_INTERPRET=1`` and torch + triton are installed.

Nothing here imports torch unless a test asks for a GPU fixture, so
``pytest -m "not gpu"`` runs with numpy and pytest alone.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from mini_vllm.labkit import LabImplError, get_lab_impl, load_lab


def pytest_configure(config):
    try:
        impl = get_lab_impl()
    except LabImplError as exc:
        pytest.exit(f"usage error: {exc}", returncode=4)
    config._lab_impl = impl


def pytest_report_header(config):
    return f"labs run against: {getattr(config, '_lab_impl', 'solution')}.py (set LAB_IMPL=starter to grade your own)"


@pytest.fixture(scope="module")
def lab(request):
    """The learner's (``LAB_IMPL=starter``) or reference module of this test's lab folder."""
    return load_lab(Path(str(request.path)))


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _has_nvidia_device() -> bool:
    # Checked without importing torch, so CPU-only runs never pay for (or need) it.
    return any(Path("/dev").glob("nvidia[0-9]*")) or Path("/proc/driver/nvidia").exists()


def _cuda_or_skip(what: str) -> None:
    if not _has_nvidia_device():
        pytest.skip(f"{what}: no NVIDIA GPU on this machine")
    import torch

    if not torch.cuda.is_available():
        pytest.skip(f"{what}: torch {torch.__version__} sees no CUDA device")


@pytest.fixture(scope="session")
def gpu_device():
    """``"cuda"`` on a GPU box with torch, triton and vllm; a one-line skip elsewhere."""
    missing = _missing("torch", "triton", "vllm")
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (GPU box: pip install -e '.[vllm]')")
    _cuda_or_skip("GPU test")
    return "cuda"


@pytest.fixture(scope="session")
def triton_device():
    """Where a Triton kernel test runs: ``"cuda"``, or ``"cpu"`` under the interpreter.

    The interpreter path needs ``TRITON_INTERPRET=1`` in the environment *before* the
    run starts (Triton reads it when a kernel is decorated), plus torch and triton.
    """
    missing = _missing("torch", "triton")
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (pip install -e '.[torch]' triton)")
    if os.environ.get("TRITON_INTERPRET") == "1":
        return "cpu"
    _cuda_or_skip("Triton test (or set TRITON_INTERPRET=1 to run it on the CPU)")
    return "cuda"
