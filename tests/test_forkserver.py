"""The fork server that starts each GPU lab's engine, checked on the CPU.

The server here preloads a small stdlib module instead of torch and vLLM; what is under
test is the protocol: each request runs as ``python -c`` would, in a process of its own
that inherits the imports and nothing a previous request did.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course import gpu_fixtures
from course.forkserver import ForkServer, ForkServerError, import_time_keys
from course.gpu_fixtures import RESULT_MARK, run_child

# Checks of the GPU fork server: a maintainer's concern, run by .ci/run (pytest --maintainer),
# not on every learner's `pytest -m "not gpu"`.
pytestmark = pytest.mark.maintainer


PRELOAD = "wave"  # in the stdlib, and imported by nothing else here


@pytest.fixture(scope="module")
def server():
    s = ForkServer([PRELOAD])
    yield s
    s.close()


def _run(server, code, payload=None, env=None, timeout=30):
    return server.run(code, payload, dict(os.environ, **(env or {})), timeout=timeout)


def test_child_gets_the_payload_and_the_preloaded_module(server):
    code = ("import json, sys; p = json.loads(sys.stdin.read()); "
            f"print(json.dumps([p, {PRELOAD!r} in sys.modules, __name__, sys.argv]))")
    answer = _run(server, code, {"x": [1, "é"]})
    assert answer["returncode"] == 0 and not answer["timed_out"]
    assert json.loads(answer["log"]) == [{"x": [1, "é"]}, True, "__main__", ["-c"]]


def test_python_and_c_level_output_both_reach_the_log(server):
    code = "import os, sys; print('py-out'); print('py-err', file=sys.stderr); os.write(1, b'c-out\\n'); os.write(2, b'c-err\\n')"
    log = _run(server, code)["log"]
    for text in ("py-out", "py-err", "c-out", "c-err"):
        assert text in log


def test_exit_codes_are_those_of_python_dash_c(server):
    assert _run(server, "import sys; sys.exit(3)")["returncode"] == 3
    assert _run(server, "raise SystemExit")["returncode"] == 0
    answer = _run(server, "raise KeyError('missing')")
    assert answer["returncode"] == 1 and "KeyError: 'missing'" in answer["log"], "traceback in the log"
    answer = _run(server, "import sys; sys.exit('bad config')")
    assert answer["returncode"] == 1 and "bad config" in answer["log"]


def test_a_child_leaves_nothing_behind_for_the_next(server):
    _run(server, "import sys, os, json; sys.modules['json'].LEAK = 1; os.environ['LEAK'] = '1'; import csv")
    answer = _run(server, "import sys, os, json; print(hasattr(json, 'LEAK'), 'LEAK' in os.environ, 'csv' in sys.modules)")
    assert answer["log"].split() == ["False", "False", "False"]


def test_the_child_gets_exactly_the_environment_it_was_sent(server):
    env = {"PATH": os.environ.get("PATH", ""), "ONLY_THIS": "yes"}
    answer = server.run("import os; print(sorted(os.environ))", None, env, timeout=30)
    assert answer["log"].strip() == str(sorted(env))


def test_each_request_is_a_new_process(server):
    pids = {int(_run(server, "import os; print(os.getpid())")["log"]) for _ in range(3)}
    assert len(pids) == 3 and os.getpid() not in pids and server.proc.pid not in pids


def test_a_crash_costs_only_its_child(server):
    assert _run(server, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")["returncode"] == -11
    assert _run(server, "print('still here')")["log"] == "still here\n"


def test_timeout_kills_the_child_and_what_it_started(server, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            f"p = subprocess.Popen(['sleep', '60']); open({str(pidfile)!r}, 'w').write(str(p.pid)); "
            "print('started', flush=True); time.sleep(60)")
    t = time.monotonic()
    answer = _run(server, code, timeout=1)
    assert time.monotonic() - t < 10
    assert answer["timed_out"] and answer["returncode"] == -9 and "started" in answer["log"]
    assert not _running(int(pidfile.read_text())), "the child's own subprocess was killed with it"


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan waits for init to reap it)."""
    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.02)
    return True


def test_a_preload_that_fails_is_reported_not_served():
    with pytest.raises(ForkServerError, match="No module named 'no_such_module_here'"):
        ForkServer(["no_such_module_here"])


def test_only_import_time_variables_force_a_fresh_interpreter():
    base = {"PATH": "/bin", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    assert import_time_keys(base, {**base, "VLLM_ATTENTION_BACKEND": "TRITON_ATTN"}) == []
    assert import_time_keys(base, {**base, "VLLM_LOGGING_LEVEL": "DEBUG", "CUDA_VISIBLE_DEVICES": "1"}) == [
        "CUDA_VISIBLE_DEVICES", "VLLM_LOGGING_LEVEL"]
    assert import_time_keys({**base, "HF_HUB_OFFLINE": "1"}, base) == ["HF_HUB_OFFLINE"], "a removed key counts"


# ------------------------------------------------------------- run_child on top of it

WHERE = f"import json, sys; print({RESULT_MARK!r} + json.dumps({PRELOAD!r} in sys.modules))"


@pytest.fixture
def fork_env(monkeypatch):
    monkeypatch.setenv("MINI_VLLM_FORK_PRELOAD", PRELOAD)
    monkeypatch.delenv("MINI_VLLM_FORK", raising=False)
    gpu_fixtures.reset_fork_server()
    yield monkeypatch
    gpu_fixtures.reset_fork_server()


def test_run_child_forks_from_the_server(fork_env):
    before = dict(gpu_fixtures.CHILD_COUNTS)
    assert run_child(WHERE, None, timeout=30)[0] is True, "the child inherited the server's imports"
    assert gpu_fixtures.fork_server() is not None
    assert gpu_fixtures.CHILD_COUNTS == {**before, "forked": before["forked"] + 1}, "counted for figures.json"
    assert gpu_fixtures.environment_info()["children"] == gpu_fixtures.CHILD_COUNTS
    last = gpu_fixtures.CHILD_RUNS[-1]
    assert last["how"] == "forked" and last["test"].endswith("::test_run_child_forks_from_the_server"), last
    assert gpu_fixtures.environment_info()["child_runs"][-1] == last


def test_run_child_starts_a_fresh_python_for_import_time_env(fork_env):
    assert run_child(WHERE, None, env={"VLLM_LOGGING_LEVEL": "DEBUG"}, timeout=30)[0] is False


def test_run_child_keeps_forking_when_this_process_env_drifts(fork_env):
    """Importing vLLM here sets TORCHINDUCTOR_COMPILE_THREADS (vllm/env_override.py): that
    must not send every later engine to a fresh Python (it did, on the H100, 2026-12-05)."""
    assert run_child(WHERE, None, timeout=30)[0] is True
    fork_env.setenv("TORCHINDUCTOR_COMPILE_THREADS", "1")
    code = f"import json, os, sys; print({RESULT_MARK!r} + json.dumps([{PRELOAD!r} in sys.modules, os.environ['TORCHINDUCTOR_COMPILE_THREADS']]))"
    assert run_child(code, None, timeout=30)[0] == [True, "1"], "forked, and the drifted value reached the child"


def test_run_child_without_the_server(fork_env):
    fork_env.setenv("MINI_VLLM_FORK", "0")
    assert run_child(WHERE, None, timeout=30)[0] is False
    assert gpu_fixtures.fork_server() is None


def test_run_child_falls_back_once_when_the_server_cannot_start(fork_env, capsys):
    fork_env.setenv("MINI_VLLM_FORK_PRELOAD", "no_such_module_here")
    assert run_child(WHERE, None, timeout=30)[0] is False
    assert run_child(WHERE, None, timeout=30)[0] is False
    err = capsys.readouterr().err
    assert err.count("no fork server") == 1 and "no_such_module_here" in err


def test_run_child_timeout_raises_as_subprocess_does(fork_env):
    with pytest.raises(subprocess.TimeoutExpired):
        run_child("import time; time.sleep(30)", None, timeout=1)
    assert run_child(WHERE, None, timeout=30)[0] is True, "the server survives a timed-out child"


def test_the_server_module_imports_no_torch():
    code = "import sys, course.forkserver, course.gpu_fixtures; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_warm_model_info_needs_the_fork_server(fork_env):
    """Without the server it must not start a fresh Python that imports vLLM (31 s)."""
    fork_env.setenv("MINI_VLLM_FORK", "0")
    before = dict(gpu_fixtures.CHILD_COUNTS)
    assert gpu_fixtures.warm_model_info() is None
    assert gpu_fixtures.CHILD_COUNTS == before, "no child was started"


def test_warm_model_info_reports_a_failed_child_and_goes_on(fork_env, capsys):
    # The stub server has no vLLM: the child's import fails, the session carries on.
    assert gpu_fixtures.warm_model_info(["LlamaForCausalLM"]) is None
    assert "model-info warm-up failed" in capsys.readouterr().err
    assert gpu_fixtures.CHILD_RUNS[-1]["how"] == "forked"
