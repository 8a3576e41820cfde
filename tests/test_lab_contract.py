"""The lab contract, checked for every lab folder: maintainer checks (``pytest --maintainer``).

They judge the files committed at ``HEAD`` (``course.lab_contract.export_head``), never the
work tree, so a learner who finishes a lab never turns them red; the learner's default run
skips them, and ``.ci/run`` runs them. For each ``phase-*/labs/lab-*``: the four files
exist; starter and solution export the same public names with the same signatures; every
stub raises ``NotImplementedError`` with a hint; given code exists once; and every CPU
test of the lab fails when run against the starter (one pytest subprocess for all labs).
Last, a copy of the repo with every starter replaced by its solution, a learner who has
finished everything, keeps ``pytest -m "not gpu"`` green.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys

import pytest

from course.lab_contract import carries_code, export_head, given_code_problems, hint_leaks, stub_messages, stub_problems
from course.labkit import REPO_ROOT, check_lab_static, find_labs, run_tests, starter_problems

pytestmark = pytest.mark.maintainer

LABS = find_labs(REPO_ROOT)
IDS = [f"{p.parent.parent.name.split('-')[1]}/{p.name}" for p in LABS]

# Labs whose starter still carries a second copy of given code (or lacks the solution's
# __main__ block or helpers). Other engineers are fixing them; a lab leaves this set when
# its fix lands, and the test below fails until it does, so the set only shrinks.
KNOWN_DRIFT: set[str] = set()


@pytest.fixture(scope="session")
def head(tmp_path_factory):
    """The repo as committed at HEAD, in a temporary folder."""
    return export_head(tmp_path_factory.mktemp("head"))


def committed(head, lab_dir):
    lab = head / lab_dir.relative_to(REPO_ROOT)
    if not lab.is_dir():
        pytest.skip(f"{lab_dir.relative_to(REPO_ROOT)} is not committed yet: maintainer checks judge HEAD")
    return lab


@pytest.fixture(scope="session")
def starter_run(head):
    labs = find_labs(head)
    if not labs:
        pytest.skip("no lab folders yet")
    run = run_tests(labs, impl="starter", cwd=head, extra_env={"PYTHONPATH": str(head)})
    assert run.outcomes, f"pytest on the committed starters reported no test (exit {run.returncode}):\n{run.output[-3000:]}"
    return run


@pytest.mark.parametrize("lab_dir", LABS, ids=IDS)
def test_lab_files_and_starter_api_match_solution(lab_dir, head):
    problems = check_lab_static(committed(head, lab_dir))
    assert not problems, f"{lab_dir.relative_to(REPO_ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("lab_dir", LABS, ids=IDS)
def test_given_code_exists_once(lab_dir, head, request):
    lab_id = request.node.callspec.id
    problems = given_code_problems(committed(head, lab_dir))
    if lab_id in KNOWN_DRIFT:
        assert problems, f"{lab_id} no longer drifts: remove it from KNOWN_DRIFT in {__file__}"
        pytest.skip(f"known drift, being fixed: {problems[0]}")
    assert not problems, f"{lab_dir.relative_to(REPO_ROOT)}:\n  " + "\n  ".join(problems)


def test_known_drift_names_only_real_labs():
    assert KNOWN_DRIFT <= set(IDS), f"not a lab: {sorted(KNOWN_DRIFT - set(IDS))}"


@pytest.mark.parametrize("lab_dir", LABS, ids=IDS)
def test_lab_tests_fail_on_the_starter(lab_dir, head, starter_run):
    lab = committed(head, lab_dir)
    outcomes = starter_run.for_lab(lab)
    ran = [o for o in outcomes.values() if o != "skipped"]
    if outcomes and not ran:
        pytest.skip("every CPU test of this lab skipped here (e.g. needs torch + triton)")
    if not outcomes:
        has_tests = "def test_" in (lab / "test_lab.py").read_text()
        assert has_tests, f"{lab_dir.relative_to(REPO_ROOT)}/test_lab.py defines no test"
        pytest.skip("every test of this lab is a GPU test here (Triton labs: TRITON_INTERPRET=1 runs them on a CPU)")
    problems = starter_problems(lab, starter_run)
    assert not problems, f"{lab_dir.relative_to(REPO_ROOT)}:\n  " + "\n  ".join(problems)


def test_cpu_suite_never_imports_torch_triton_or_vllm(starter_run):
    assert starter_run.heavy_imports == [], (
        f"`pytest -m 'not gpu'` imported {starter_run.heavy_imports}; import them inside gpu tests only"
    )


@pytest.mark.timeout(600)
def test_finishing_every_lab_keeps_the_default_suite_green(tmp_path_factory):
    finished = export_head(tmp_path_factory.mktemp("finished"))
    for lab in find_labs(finished):
        shutil.copy(lab / "solution.py", lab / "starter.py")
    env = dict(os.environ, PYTHONPATH=str(finished))
    for key in ("LAB_IMPL", "TRITON_INTERPRET"):
        env.pop(key, None)
    # The site tests build and browse the docs and read no lab file; they are left out here
    # because the browser test is the slowest of the suite, not because a finished lab
    # could touch them.
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "not gpu", "-q", "-x", "-p", "no:cacheprovider",
                           "--ignore=tests/test_site.py"],
                          cwd=finished, env=env, capture_output=True, text=True, timeout=590)
    assert proc.returncode == 0, ("with every starter finished, `pytest -m \"not gpu\"` went red:\n"
                                  + proc.stdout[-3000:] + proc.stderr[-1000:])


# --- a lab a learner has to think through (stubs name the task; hints hold no solution line)

@pytest.mark.parametrize("lab_dir", LABS, ids=IDS)
def test_stubs_name_the_task_and_carry_no_code(lab_dir, head):
    problems = stub_problems(committed(head, lab_dir))
    assert not problems, f"{lab_dir.relative_to(REPO_ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("lab_dir", LABS, ids=IDS)
def test_no_stub_or_readme_hint_reproduces_a_solution_line(lab_dir, head):
    leaks = hint_leaks(committed(head, lab_dir))
    assert not leaks, f"{lab_dir.relative_to(REPO_ROOT)}:\n  " + "\n  ".join(leaks)


def test_at_most_five_percent_of_stub_messages_carry_code(head):
    messages = [m for lab in LABS for m in stub_messages(ast.parse((committed(head, lab) / "starter.py").read_text())).values()]
    with_code = [m for m in messages if carries_code(m)]
    print(f"{len(with_code)} of {len(messages)} stub messages carry code")
    assert len(with_code) <= 0.05 * len(messages), with_code[:5]
