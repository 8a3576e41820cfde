"""The lab contract, checked for every lab folder in the repo.

For each ``phase-*/labs/lab-*``: the four files exist; starter and solution export the
same public names with the same signatures; every stub raises ``NotImplementedError``
with a hint; and every CPU test of the lab fails when run against the starter. The last
check runs all labs' tests once, under ``LAB_IMPL=starter``, in one pytest subprocess.
"""
from __future__ import annotations

import pytest

from course.labkit import REPO_ROOT, check_lab_static, find_labs, run_tests, starter_problems

LABS = find_labs(REPO_ROOT)
IDS = [f"{p.parent.parent.name.split('-')[1]}/{p.name}" for p in LABS]


@pytest.fixture(scope="session")
def starter_run():
    if not LABS:
        pytest.skip("no lab folders yet")
    return run_tests(LABS, impl="starter")


@pytest.mark.parametrize("lab_dir", LABS, ids=IDS)
def test_lab_files_and_starter_api_match_solution(lab_dir):
    problems = check_lab_static(lab_dir)
    assert not problems, f"{lab_dir.relative_to(REPO_ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("lab_dir", LABS, ids=IDS)
def test_lab_tests_fail_on_the_starter(lab_dir, starter_run):
    outcomes = starter_run.for_lab(lab_dir)
    ran = [o for o in outcomes.values() if o != "skipped"]
    if outcomes and not ran:
        pytest.skip("every CPU test of this lab skipped here (e.g. needs torch + triton)")
    if not outcomes:
        has_tests = "def test_" in (lab_dir / "test_lab.py").read_text()
        assert has_tests, f"{lab_dir.relative_to(REPO_ROOT)}/test_lab.py defines no test"
        pytest.skip("every test of this lab is a GPU test here (Triton labs: TRITON_INTERPRET=1 runs them on a CPU)")
    problems = starter_problems(lab_dir, starter_run)
    assert not problems, f"{lab_dir.relative_to(REPO_ROOT)}:\n  " + "\n  ".join(problems)


def test_cpu_suite_never_imports_torch_triton_or_vllm(starter_run):
    assert starter_run.heavy_imports == [], (
        f"`pytest -m 'not gpu'` imported {starter_run.heavy_imports}; import them inside gpu tests only"
    )
