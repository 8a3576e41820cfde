"""``course.pin_source.exec_without_imports``: the pin's code, run with its imports replaced."""
from __future__ import annotations

import pytest

from course.pin_source import exec_without_imports

SOURCE = '''
import torch
from vllm.logger import init_logger

logger = init_logger(__name__)
LIMIT = 3


def clamp(x: "Tensor") -> int:
    return min(x, LIMIT)


def needs_torch():
    return torch.zeros(1)
'''


@pytest.fixture
def root(tmp_path):
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "mod.py").write_text(SOURCE)
    return tmp_path


def test_imports_are_removed_and_provided_names_used(root):
    ns = exec_without_imports("vllm/mod.py", {"init_logger": lambda name: name}, root=root)
    assert ns["clamp"](7) == 3 and ns["logger"] == "pin:vllm/mod.py"
    with pytest.raises(NameError, match="torch"):
        ns["needs_torch"]()


def test_only_keeps_the_named_definitions(root):
    ns = exec_without_imports("vllm/mod.py", {"LIMIT": 5}, only=("clamp",), root=root)
    assert ns["clamp"](7) == 5 and "needs_torch" not in ns and "logger" not in ns


def test_only_names_a_missing_definition(root):
    with pytest.raises(LookupError, match="nope"):
        exec_without_imports("vllm/mod.py", {}, only=("clamp", "nope"), root=root)
