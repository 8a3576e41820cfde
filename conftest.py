"""Root conftest: the lab harness and the shared GPU fixtures.

- ``LAB_IMPL`` picks which file every lab test runs against: ``solution`` (default) or
  ``starter``. Any other value stops pytest before it collects anything.
- ``lab``: the chosen module, loaded by path from the requesting test's own folder.
- ``gpu_device``: ``"cuda"`` when CUDA, torch, triton and vllm are all present; a
  one-line skip otherwise. ``triton_device``: a CUDA GPU, or Triton's CPU interpreter
  when ``TRITON_INTERPRET=1`` and torch + triton are installed; tests using it are
  ``gpu`` tests unless the interpreter is on.
- ``tiny_llama_dir`` / ``tiny_moe_dir``: local random-weight HF models (no download);
  ``figures``: records measured numbers into ``$MINI_VLLM_FIGURES_DIR/figures.json``.

Learner-safe defaults (what a learner runs stays green and truthful whatever they finished):

- ``maintainer`` tests (the lab contract: starters must fail, signatures, stubs, given
  code once) are skipped unless pytest gets ``--maintainer``; they judge the committed
  files, not a learner's edited copy. ``.ci/run`` runs them.
- A test that hangs fails after its time limit (pytest-timeout, ``timeout`` in the ini;
  ``@pytest.mark.timeout(N)`` for a slow one), with a hint at the loop that never ended.
- Hypothesis: profile ``learner`` (fixed examples, no example database) unless
  ``COURSE_HYPOTHESIS_PROFILE=ci`` (new random examples each run, more of them).

Nothing here imports torch unless a test asks for a GPU fixture, so
``pytest -m "not gpu"`` runs with numpy and pytest alone.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

from course.labkit import LabImplError, get_lab_impl, load_lab

HYPOTHESIS_PROFILES = ("learner", "ci")
GPU_TEST_TIMEOUT_S = 900


def pytest_addoption(parser):
    parser.addoption("--maintainer", action="store_true",
                     help="also run the `maintainer` tests (the lab contract, on the committed starters and solutions)")
    if importlib.util.find_spec("pytest_timeout") is None:
        # The ini sets a default limit; without the plugin the key would only warn.
        parser.addini("timeout", "per-test time limit in seconds (enforced by pytest-timeout: pip install -e '.[dev]')")


def pytest_configure(config):
    config.addinivalue_line("markers", "maintainer: checks the course's own files; run with --maintainer (skipped otherwise)")
    if not config.pluginmanager.hasplugin("timeout"):
        config.addinivalue_line("markers", "timeout(seconds): a per-test limit, enforced once pytest-timeout is installed")
    try:
        impl = get_lab_impl()
    except LabImplError as exc:
        pytest.exit(f"usage error: {exc}", returncode=4)
    config._lab_impl = impl
    _load_hypothesis_profile()


def _load_hypothesis_profile() -> None:
    name = os.environ.get("COURSE_HYPOTHESIS_PROFILE", "").strip() or "learner"
    if name not in HYPOTHESIS_PROFILES:
        pytest.exit(f"usage error: COURSE_HYPOTHESIS_PROFILE={name!r} is not a profile; use one of: "
                    + ", ".join(HYPOTHESIS_PROFILES), returncode=4)
    try:
        from hypothesis import settings
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:
        return
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        # Its caches (unicode tables, constants) go to the temp folder, not the work tree.
        set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "vllm-mastery-hypothesis")
    # database=None: no .hypothesis/ folder in the work tree, and no example replayed
    # from an earlier run, so a learner's result depends on their code alone.
    settings.register_profile("learner", derandomize=True, database=None)
    settings.register_profile("ci", derandomize=False, database=None, max_examples=200)
    settings.load_profile(name)


def pytest_report_header(config):
    return f"labs run against: {getattr(config, '_lab_impl', 'solution')}.py (set LAB_IMPL=starter to grade your own)"


def pytest_collection_modifyitems(config, items):
    """Skip ``maintainer`` tests without ``--maintainer``; mark Triton tests ``gpu``; time GPU tests.

    Triton kernel tests count as ``gpu`` tests unless the CPU interpreter is on, so
    ``pytest -m gpu`` on a GPU box runs them on the device, and
    ``TRITON_INTERPRET=1 pytest -m "not gpu"`` runs them on a laptop.
    """
    if "slow" not in (config.option.markexpr or ""):
        skip_slow = pytest.mark.skip(reason="slow test (a soak or the browser): run it with -m slow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip_slow)
    if not config.getoption("--maintainer"):
        skip = pytest.mark.skip(reason="maintainer check: run with pytest --maintainer (.ci/run does)")
        for item in items:
            if item.get_closest_marker("maintainer"):
                item.add_marker(skip)
    if os.environ.get("TRITON_INTERPRET") != "1":
        for item in items:
            if "triton_device" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.gpu)
    for item in items:
        # A GPU test starts real engines (a minute or more each on a cold box): its own limit.
        if not config.pluginmanager.hasplugin("timeout"):
            break
        if item.get_closest_marker("gpu") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(GPU_TEST_TIMEOUT_S))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test stopped by pytest-timeout gets a hint: what limit, and which loop to suspect."""
    outcome = yield
    report = outcome.get_result()
    if not (report.failed and call.excinfo is not None and "from pytest-timeout" in str(call.excinfo.value)):
        return
    marker = item.get_closest_marker("timeout")
    limit = marker.args[0] if marker and marker.args else item.config.getini("timeout")
    lab = next((p for p in Path(str(item.path)).parents if p.parent.name == "labs" and p.name.startswith("lab-")), None)
    if lab is not None:
        where = Path(os.path.relpath(lab / "README.md", item.config.rootpath))
        hint = (f"a loop that never ends? A lab test hangs when a scheduler or engine loop never reaches its exit "
                f"(a request never finishes, a `continue` where a `break` belongs); see {where}")
    else:
        hint = "a loop that never ends, or a slow test: give it @pytest.mark.timeout(N) if it is only slow"
    report.sections.append(("timeout", f"{item.name} ran past its {limit} s limit: {hint}"))


def pytest_collection_finish(session):
    """Start the GPU labs' fork server before the first test, when engine tests will run.

    Its imports, and vLLM's model-info cache for the tiny models' architectures
    (``warm_model_info``), are then paid once for the session instead of inside whichever
    engine test happens to come first; ``run_child`` forks every engine from the server.
    Only when a selected test asks for ``gpu_device`` on a machine with an NVIDIA device,
    torch, triton and vllm.
    """
    session.config._engine_tests = any("gpu_device" in getattr(i, "fixturenames", ()) for i in session.items)
    if not session.config._engine_tests or os.environ.get("MINI_VLLM_FORK", "1") == "0":
        return
    if _missing("torch", "triton", "vllm") or not _has_nvidia_device():
        return
    from course import gpu_fixtures

    import time

    server = gpu_fixtures.fork_server()
    if server is None:
        return
    t = time.perf_counter()
    warmed = gpu_fixtures.warm_model_info()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"mini_vllm: fork server imported {len(server.preload)} modules ({', '.join(server.preload)}) "
                            f"in {server.import_s:.1f} s; vLLM model-info cache for {warmed} in "
                            f"{time.perf_counter() - t:.1f} s (once, before the first test; every engine is forked "
                            "from the server)")


def pytest_terminal_summary(terminalreporter, config):
    """After a GPU run: how the engines were started (forked or a fresh Python) and how long each took."""
    import sys

    gpu_fixtures = sys.modules.get("course.gpu_fixtures")
    if not getattr(config, "_engine_tests", False) or gpu_fixtures is None or not gpu_fixtures.CHILD_RUNS:
        return
    counts = gpu_fixtures.CHILD_COUNTS
    terminalreporter.section("mini_vllm engine children")
    terminalreporter.write_line(f"{counts['forked']} forked from the fork server, {counts['fresh']} fresh Pythons")
    for run in gpu_fixtures.CHILD_RUNS:
        terminalreporter.write_line(f"{run['wall_s']:7.1f}s  {run['how']:<6}  {run['test']}")


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


def _tiny_model(tmp_path_factory, env_var: str, builder: str, what: str) -> str:
    real = os.environ.get(env_var)
    if real:
        return real
    if _missing("torch", "transformers", "tokenizers"):
        pytest.skip(f"building the tiny {what} needs torch, transformers and tokenizers")
    from course import gpu_fixtures

    return str(getattr(gpu_fixtures, builder)(tmp_path_factory.mktemp(builder)))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A local HF-format Llama for real vLLM: ``MINI_VLLM_MODEL`` if set, else a tiny random one."""
    return _tiny_model(tmp_path_factory, "MINI_VLLM_MODEL", "build_tiny_llama", "test model")


@pytest.fixture(scope="session")
def tiny_moe_dir(tmp_path_factory):
    """A local HF-format Mixtral-style MoE (8 experts, top-2): ``MINI_VLLM_MOE_MODEL`` or a tiny random one."""
    return _tiny_model(tmp_path_factory, "MINI_VLLM_MOE_MODEL", "build_tiny_moe", "MoE model")


@pytest.fixture(scope="session")
def figures():
    """``figures(key, value)`` records a measured figure; written to JSON at the end.

    The file is ``$MINI_VLLM_FIGURES_DIR/figures.json`` (nothing is written when the
    variable is unset), with the GPU, driver and library versions next to the figures,
    which is what each lab's "Seen on H100" block quotes.
    """
    recorded: dict = {}

    def record(key: str, value):
        recorded[key] = value
        print(f"FIGURE {key} = {value}")

    yield record
    out = os.environ.get("MINI_VLLM_FIGURES_DIR")
    if out and recorded:
        import json

        from course.gpu_fixtures import environment_info

        path = Path(out) / "figures.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(path.read_text()) if path.exists() else {}
        old.setdefault("figures", {}).update(recorded)
        old["environment"] = environment_info()
        path.write_text(json.dumps(old, indent=2, sort_keys=True))
