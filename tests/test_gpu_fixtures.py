"""The child-process protocol every GPU lab uses to get a clean GPU, checked without one."""
import pytest

from course.gpu_fixtures import RESULT_MARK, run_child

# Checks of the GPU fixtures: a maintainer's concern, run by .ci/run (pytest --maintainer),
# not on every learner's `pytest -m "not gpu"`.
pytestmark = pytest.mark.maintainer

ECHO = f"""
import json, os, sys
payload = json.loads(sys.stdin.read())
print("some log line")
print("a warning", file=sys.stderr)
import mini_vllm  # the repo root is on the child's path

print({RESULT_MARK!r} + json.dumps({{"got": payload, "offline": os.environ["HF_HUB_OFFLINE"]}}))
"""


def test_run_child_returns_the_marked_json_and_the_whole_log():
    result, log, returncode = run_child(ECHO, {"x": [1, 2]}, timeout=60)
    assert returncode == 0
    assert result == {"got": {"x": [1, 2]}, "offline": "1"}, "payload in, vLLM's offline env set"
    assert "some log line" in log and "a warning" in log, "stdout and stderr both kept"


def test_run_child_without_a_result_line_returns_none_and_the_exit_code():
    result, log, returncode = run_child("import sys; print('boom', file=sys.stderr); sys.exit(3)", None, timeout=60)
    assert (result, returncode) == (None, 3)
    assert "boom" in log


def test_run_child_env_overrides_win():
    code = f"import json, os; print({RESULT_MARK!r} + json.dumps(os.environ['HF_HUB_OFFLINE']))"
    assert run_child(code, None, env={"HF_HUB_OFFLINE": "0"}, timeout=60)[0] == "0"
