"""``course.lab_contract``'s stub and hint checks, on planted labs: each catches what it should."""
from __future__ import annotations

import textwrap

from course.lab_contract import carries_code, hint_leaks, stub_problems

SOLUTION = textwrap.dedent('''
    def blocks_needed(available, page, num_layers):
        return max(available // page // num_layers, 0)
''')


def plant(tmp_path, stub: str, readme: str):
    (tmp_path / "solution.py").write_text(SOLUTION)
    (tmp_path / "starter.py").write_text(textwrap.dedent(f'''
        def blocks_needed(available, page, num_layers):
            raise NotImplementedError({stub!r})
    '''))
    (tmp_path / "README.md").write_text(readme)
    return tmp_path


def test_a_task_only_stub_and_prose_hints_pass(tmp_path):
    lab = plant(tmp_path, "TODO 1: count the blocks a sequence needs (README task 1)", "Round up, not down.\n")
    assert stub_problems(lab) == [] and hint_leaks(lab) == []


def test_a_stub_with_code_is_caught(tmp_path):
    lab = plant(tmp_path, "TODO 1: return -(-num_tokens // block_size) (README task 1)", "")
    assert any("carries code" in p for p in stub_problems(lab))
    assert carries_code("TODO 3: x = f(y) (README task 3)") and not carries_code("TODO 3: hash a block (README task 3)")


def test_a_stub_that_names_no_task_is_caught(tmp_path):
    lab = plant(tmp_path, "TODO: implement", "")
    assert any("should read" in p for p in stub_problems(lab))


def test_a_readme_hint_that_copies_a_solution_line_is_caught_even_renamed(tmp_path):
    lab = plant(tmp_path, "TODO 1: count the blocks (README task 1)", "Hint: `return max(free // size // layers, 0)`\n")
    leaks = hint_leaks(lab)
    assert leaks and "README.md line 1" in leaks[0]
