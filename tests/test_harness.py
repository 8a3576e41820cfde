"""The harness itself: LAB_IMPL handling, loading by path, and the contract checker.

Each test builds a throwaway repo in tmp_path (root conftest + a planted lab) and runs
pytest on it in a subprocess, the way a learner would.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from course import grade

# The harness's own tests plant whole repos and run pytest and the grader in them (most of
# a minute): they check the course machinery, not a learner's work, so they run with the
# maintainer checks (pytest --maintainer; .ci/run does) and keep the learner's suite fast.
pytestmark = pytest.mark.maintainer
from course.labkit import (REPO_ROOT, LabImplError, check_lab_static, compare_api, get_lab_impl,
                              load_module_from_path, run_tests, starter_problems)

SOLUTION = '''
def add(a: int, b: int) -> int:
    """The reference."""
    return a + b
'''
STARTER = '''
def add(a: int, b: int) -> int:
    raise NotImplementedError("TODO 1: return the sum of a and b - see README step 1")
'''
GOOD_TEST = '''
def test_add_returns_the_sum(lab):
    assert lab.add(2, 3) == 5
'''


def make_repo(tmp_path: Path, labs: dict[str, tuple[str, str, str]]) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO_ROOT / "conftest.py", root / "conftest.py")
    (root / "pytest.ini").write_text("[pytest]\naddopts = --import-mode=importlib -p no:cacheprovider\n"
                                     "markers =\n    gpu: needs a GPU\n")
    for name, (solution, starter, test) in labs.items():
        lab = root / "phase-99-planted" / "labs" / name
        lab.mkdir(parents=True)
        (lab / "README.md").write_text("# planted lab\n")
        (lab / "solution.py").write_text(textwrap.dedent(solution))
        (lab / "starter.py").write_text(textwrap.dedent(starter))
        (lab / "test_lab.py").write_text(textwrap.dedent(test))
    return root


def pytest_in(root: Path, *args: str, impl: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """pytest in ``root`` as a learner runs it: no LAB_IMPL or hypothesis profile unless given in ``env``."""
    extra = env or {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    for key in ("LAB_IMPL", "COURSE_HYPOTHESIS_PROFILE"):
        env.pop(key, None)
    env.update(extra)
    if impl is not None:
        env["LAB_IMPL"] = impl
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_lab_impl_defaults_to_solution_and_rejects_anything_else():
    assert get_lab_impl("") == "solution"
    assert get_lab_impl("Starter") == "starter"
    with pytest.raises(LabImplError, match="solution, starter"):
        get_lab_impl("bogus")


LAZY_TEST = "def test_tautology(lab):\n    assert True\n"
MUL_SOLUTION = SOLUTION.replace("a + b", "a * b")
MUL_TEST = "def test_mul(lab):\n    assert lab.add(2, 3) == 6\n"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """One throwaway repo holding a good lab, two planted bad ones and a name-clash pair."""
    root = make_repo(tmp_path_factory.mktemp("planted"), {
        "lab-01-good": (SOLUTION, STARTER, GOOD_TEST),
        "lab-02-mul": (MUL_SOLUTION, STARTER, MUL_TEST),
        "lab-03-lazy-test": (SOLUTION, STARTER, LAZY_TEST),
        "lab-04-finished-starter": (SOLUTION, SOLUTION, GOOD_TEST),
    })
    labs = root / "phase-99-planted" / "labs"
    run = run_tests([labs], impl="starter", cwd=root, extra_env={"PYTHONPATH": str(REPO_ROOT)})
    return root, labs, run


def test_bogus_lab_impl_stops_pytest_with_a_usage_error(planted):
    root, _, _ = planted
    proc = pytest_in(root, impl="bogus")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    assert "LAB_IMPL='bogus'" in out and "solution, starter" in out
    assert "Traceback" not in out


def test_solutions_pass_and_same_named_files_in_two_labs_do_not_collide(planted):
    root, labs, _ = planted
    proc = pytest_in(root, str(labs / "lab-01-good"), str(labs / "lab-02-mul"))
    assert proc.returncode == 0, proc.stdout


def test_lab_fixture_loads_the_starter_when_lab_impl_says_so(planted):
    _, labs, run = planted
    assert run.for_lab(labs / "lab-01-good") == {
        str(labs / "lab-01-good" / "test_lab.py") + "::test_add_returns_the_sum": "failed"}


def test_planted_lab_whose_tests_pass_on_the_starter_is_caught(planted):
    # The starter is a stub, but the test never exercises the lab.
    _, labs, run = planted
    problems = starter_problems(labs / "lab-03-lazy-test", run)
    assert problems == ["test_tautology passes on the unimplemented starter: it tests nothing"]


def test_planted_lab_with_a_finished_starter_is_caught(planted):
    _, labs, run = planted
    lab = labs / "lab-04-finished-starter"
    assert any("no `raise NotImplementedError" in p for p in check_lab_static(lab))
    assert starter_problems(lab, run) == ["test_add_returns_the_sum passes on the unimplemented starter: it tests nothing"]


def test_a_good_lab_passes_every_check(planted):
    _, labs, run = planted
    assert check_lab_static(labs / "lab-01-good") == []
    assert starter_problems(labs / "lab-01-good", run) == []


def test_signature_drift_and_missing_hints_are_reported(tmp_path):
    sol = tmp_path / "solution.py"
    sol.write_text("class Pool:\n    def get(self, n: int):\n        return n\n\ndef f(x):\n    return x\n")
    sta = tmp_path / "starter.py"
    sta.write_text("class Pool:\n    def get(self, n):\n        raise NotImplementedError\n")
    problems = compare_api(load_module_from_path(sol), load_module_from_path(sta))
    assert "starter is missing public name 'f'" in problems
    assert any(p.startswith("Pool.get:") for p in problems)
    from course.labkit import starter_stub_problems
    assert "without a hint" in starter_stub_problems(sta)[0]


def test_grader_reads_done_on_the_solution(planted, capsys, monkeypatch):
    root, labs, _ = planted
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.chdir(root)
    assert grade.main([str(labs / "lab-01-good"), "--impl", "solution"]) == 0
    assert "lab-01-good  1/1    done    1 test passes" in capsys.readouterr().out


TRITON_TEST = """
def test_kernel_matches_reference(lab, triton_device):
    assert lab.add(1, 1) == 2
"""
SKIPPING_TEST = """
import pytest

def test_needs_a_library(lab):
    pytest.skip("needs the frobnicate library (pip install frobnicate)")
"""
HALF_TEST = """
def test_add_zero(lab):
    assert lab.add(0, 0) == 0

def test_add_returns_the_sum(lab):
    assert lab.add(2, 3) == 5, "add(2, 3) should be 5: look at the operator"
"""
HALF_STARTER = "def add(a: int, b: int) -> int:\n    return a * b\n"


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("explained"), {
        "lab-01-triton": (SOLUTION, STARTER, TRITON_TEST),
        "lab-02-skips": (SOLUTION, STARTER, SKIPPING_TEST),
        "lab-03-half": (SOLUTION, HALF_STARTER, HALF_TEST),
        "lab-04-broken": (SOLUTION, "def add(a, b:\n", GOOD_TEST),
        "lab-05-good": (SOLUTION, STARTER, GOOD_TEST),
    })
    return root, root / "phase-99-planted" / "labs"


def grade_rows(root, monkeypatch, capsys, *args) -> dict[str, str]:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.chdir(root)
    assert grade.main(list(args)) == 0
    out = capsys.readouterr().out
    return {line.split()[1]: line for line in out.splitlines() if line.startswith("phase-99-planted")}


def test_every_grader_row_says_why(explained, monkeypatch, capsys):
    root, labs = explained
    rows = grade_rows(root, monkeypatch, capsys, str(labs))
    assert "0/0" in rows["lab-01-triton"] and "GPU only" in rows["lab-01-triton"]
    assert "every test of this lab needs a GPU (Triton); run with TRITON_INTERPRET=1" in rows["lab-01-triton"]
    assert "skipped" in rows["lab-02-skips"] and "needs the frobnicate library" in rows["lab-02-skips"]
    assert "1/2    in progress" in rows["lab-03-half"]
    assert "next: test_add_returns_the_sum: add(2, 3) should be 5: look at the operator" in rows["lab-03-half"]
    assert "0/1    not started  next: TODO 1: return the sum of a and b - see README step 1" in rows["lab-05-good"]
    assert "error" in rows["lab-04-broken"] and "starter.py" in rows["lab-04-broken"] and "SyntaxError" in rows["lab-04-broken"]


def test_the_grader_takes_a_lab_or_phase_by_name_and_refuses_unknown_names(explained, monkeypatch, capsys):
    root, labs = explained
    monkeypatch.chdir(root)
    assert grade.labs_under([Path("lab-03-half")]) == [labs / "lab-03-half"]
    assert len(grade.labs_under([Path("phase-99")])) == 5
    assert grade.main(["lab-77-nothing"]) == 2
    err = capsys.readouterr().err
    assert "lab-77-nothing" in err and "a lab or phase folder" in err


def test_the_grader_keeps_triton_interpret_when_the_learner_sets_it(explained, monkeypatch, capsys):
    pytest.importorskip("triton", reason="TRITON_INTERPRET runs need torch + triton")
    root, labs = explained
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.chdir(root)
    assert grade.main([str(labs / "lab-01-triton")]) == 0
    assert "0/1" in capsys.readouterr().out


# ------------------------------------------------------------- learner-safe defaults

MAINTAINER_TEST = '''
import pytest

@pytest.mark.maintainer
def test_only_for_maintainers():
    assert False, "a maintainer check ran"
'''
HANG_TEST = '''
import pytest

@pytest.mark.timeout(1)
def test_step_until_done(lab):
    while True:
        pass
'''
HYPOTHESIS_TEST = '''
from hypothesis import given, settings, strategies as st

def test_profile_is_reported():
    s = settings()
    print("PROFILE", settings._current_profile, s.derandomize, s.database)

@given(st.text())
def test_text_roundtrips(s):
    assert s.encode("utf-8").decode("utf-8") == s
'''
HAS_TIMEOUT = importlib.util.find_spec("pytest_timeout") is not None


@pytest.fixture(scope="module")
def defaults(tmp_path_factory):
    """A planted repo with a maintainer test, a hypothesis test and (with pytest-timeout) a hanging lab.

    Run twice: as a learner runs it, and as CI does (``--maintainer``, the ci profile).
    """
    labs = {"lab-01-hang": (SOLUTION, STARTER, HANG_TEST)} if HAS_TIMEOUT else {}
    root = make_repo(tmp_path_factory.mktemp("defaults"), labs)
    (root / "tests").mkdir()
    (root / "tests" / "test_meta.py").write_text(MAINTAINER_TEST)
    (root / "tests" / "test_h.py").write_text(HYPOTHESIS_TEST)
    learner = pytest_in(root, "-rs", "-s")
    ci = pytest_in(root, "-s", "--maintainer", "tests", env={"COURSE_HYPOTHESIS_PROFILE": "ci"})
    return root, learner, ci


def test_maintainer_checks_are_skipped_unless_asked_for(defaults):
    _, learner, ci = defaults
    assert "1 skipped" in learner.stdout and "pytest --maintainer" in learner.stdout
    assert "a maintainer check ran" not in learner.stdout
    assert ci.returncode == 1 and "a maintainer check ran" in ci.stdout


@pytest.mark.skipif(not HAS_TIMEOUT, reason="pytest-timeout is in the dev extra")
def test_a_hanging_lab_test_fails_with_a_hint_at_the_loop(defaults):
    _, learner, _ = defaults
    assert "1 failed" in learner.stdout and "Timeout" in learner.stdout
    assert "test_step_until_done ran past its 1 s limit" in learner.stdout
    assert "a loop that never ends?" in learner.stdout
    assert "phase-99-planted/labs/lab-01-hang/README.md" in learner.stdout


def test_hypothesis_is_deterministic_by_default_and_leaves_no_database(defaults):
    root, learner, ci = defaults
    assert "PROFILE learner True None" in learner.stdout, learner.stdout + learner.stderr
    assert "PROFILE ci False None" in ci.stdout, ci.stdout + ci.stderr
    assert not (root / ".hypothesis").exists() and not (root / "tests" / ".hypothesis").exists()


def test_an_unknown_hypothesis_profile_is_refused(defaults):
    root, _, _ = defaults
    proc = pytest_in(root, "tests", env={"COURSE_HYPOTHESIS_PROFILE": "fast"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4
    assert "COURSE_HYPOTHESIS_PROFILE='fast'" in out and "learner, ci" in out
