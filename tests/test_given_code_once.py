"""``course.lab_contract.given_code_problems``: what a starter hands the learner exists once.

Planted starter/solution pairs in tmp_path; each test names one way the two can drift.
"""
from __future__ import annotations

import textwrap

from course.lab_contract import given_code_problems, todo_regions

SOLUTION = '''
"""Lab 99-01: the reference."""
import math

SCALE = 2


def helper(x):
    """Given: the learner calls it."""
    return x * SCALE


class Pool:
    """A pool."""

    def __init__(self, n):
        self.n = n

    def take(self, k: int) -> int:
        """Take k."""
        if k > self.n:
            raise ValueError("too many")
        self.n -= k
        return k


def area(r):
    return math.pi * r * r
'''

STARTER = '''
"""Lab 99-01: your work, TODOs 1-2."""
import math

SCALE = 2


def helper(x):
    """Given: the learner calls it."""
    return x * SCALE


class Pool:
    """A pool."""

    def __init__(self, n):
        self.n = n

    def take(self, k: int) -> int:
        """Take k (and say what the TODO wants)."""
        raise NotImplementedError("TODO 1: refuse k > n, then subtract - see README step 1")


def area(r):
    raise NotImplementedError("TODO 2: pi r squared - see README step 2")
'''


def plant(tmp_path, starter=STARTER, solution=SOLUTION):
    (tmp_path / "starter.py").write_text(textwrap.dedent(starter))
    (tmp_path / "solution.py").write_text(textwrap.dedent(solution))
    return tmp_path


def test_a_starter_that_differs_only_in_todo_bodies_and_module_docstring_is_clean(tmp_path):
    assert given_code_problems(plant(tmp_path)) == []


def test_todo_regions_are_the_stubbed_functions_and_methods_by_qualified_name(tmp_path):
    import ast
    tree = ast.parse(STARTER)
    assert sorted(todo_regions(tree)) == ["Pool.take", "area"]


def test_a_changed_given_function_is_reported_by_name(tmp_path):
    lab = plant(tmp_path, starter=STARTER.replace("return x * SCALE", "return SCALE * x"))
    assert given_code_problems(lab) == [
        "starter.py and solution.py differ at `helper` (starter line 8, solution line 8): given code must exist once"]


def test_a_changed_constant_and_a_changed_import_are_reported_first_one_first(tmp_path):
    lab = plant(tmp_path, starter=STARTER.replace("import math", "import math, os").replace("SCALE = 2", "SCALE = 3"))
    problems = given_code_problems(lab)
    assert len(problems) == 1 and "differ at `import math, os`" in problems[0]


def test_a_changed_signature_of_a_todo_function_is_reported(tmp_path):
    lab = plant(tmp_path, starter=STARTER.replace("def area(r):", "def area(radius):"))
    assert "differ at `area`" in given_code_problems(lab)[0]


def test_a_given_method_beside_a_todo_method_is_compared(tmp_path):
    lab = plant(tmp_path, starter=STARTER.replace("self.n = n", "self.n = int(n)"))
    assert "differ at `Pool`" in given_code_problems(lab)[0]


def test_code_only_in_the_solution_is_reported(tmp_path):
    lab = plant(tmp_path, solution=SOLUTION + "\n\ndef extra():\n    return 1\n")
    assert given_code_problems(lab) == ["solution.py has `extra` (line 31), which starter.py lacks"]


def test_a_raise_without_todo_is_not_a_todo_region(tmp_path):
    lab = plant(tmp_path, starter=STARTER.replace('"TODO 2: pi r squared', '"pi r squared'))
    assert "differ at `area`" in given_code_problems(lab)[0]


def test_a_starter_with_no_todo_region_is_reported(tmp_path):
    lab = plant(tmp_path, starter=SOLUTION)
    assert given_code_problems(lab) == [
        'starter.py has no TODO region (a function whose body is raise NotImplementedError("TODO ..."))']


def test_missing_files_and_syntax_errors_are_reported_not_raised(tmp_path):
    assert given_code_problems(tmp_path) == ["missing starter.py", "missing solution.py"]
    lab = plant(tmp_path, starter="def f(:\n")
    assert given_code_problems(lab)[0].startswith("starter.py does not parse: line 1")


def test_export_head_copies_the_committed_files_not_the_edited_ones(tmp_path):
    import subprocess

    from course.lab_contract import export_head

    repo = tmp_path / "repo"
    lab = repo / "phase-99-x" / "labs" / "lab-01-y"
    lab.mkdir(parents=True)
    (lab / "starter.py").write_text('raise NotImplementedError("TODO 1")\n')
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "lab"], check=True)
    (lab / "starter.py").write_text("x = 1  # the learner's finished work\n")
    (repo / "untracked.py").write_text("")
    out = export_head(tmp_path / "head", root=repo)
    assert (out / "phase-99-x" / "labs" / "lab-01-y" / "starter.py").read_text() == 'raise NotImplementedError("TODO 1")\n'
    assert not (out / "untracked.py").exists()


def test_export_head_outside_a_git_checkout_says_why(tmp_path):
    import pytest

    from course.lab_contract import export_head

    with pytest.raises(RuntimeError, match="need a git checkout"):
        export_head(tmp_path / "head", root=tmp_path)
