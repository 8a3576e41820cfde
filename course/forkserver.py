"""A fork server for the GPU labs: import vLLM once, then fork a fresh process per engine.

Every GPU lab that starts a vLLM engine starts it in a process of its own: a process that
has held an engine keeps its KV cache after teardown (three engines at
``gpu_memory_utilization=0.3`` in one process left 6.9 of 79 GiB free on the H100), and
a fresh process is also what makes two engines' timings comparable. Done with
``python -c``, every engine also pays Python's start-up and ``import vllm`` again.

This server pays the import once. It imports ``torch`` and vLLM, checks that CUDA is
still untouched, and then forks one child per request. The child inherits every imported
module but no CUDA context, creates its own on first use, and gives all of it back when
it exits. vLLM's own test suite isolates GPU tests the same way,
tests/utils.py:1489@0decac0 (fork_new_process_for_each_test), and vLLM forks its
engine-core process after its imports by default.

Run as ``python -m course.forkserver MODULE ...``. The protocol is one JSON object
per line:

- server to client, once: ``{"ready": true, "import_s": ..., "threads": ...}`` or
  ``{"ready": false, "error": "..."}``;
- client to server: ``{"code", "payload", "env", "cwd", "timeout"}``;
- server to client: ``{"returncode", "log", "timed_out", "wall_s"}``.

The child runs ``code`` as ``python -c code`` would, with ``payload`` as JSON on its
stdin, ``env`` as its whole environment, and its stdout and stderr (Python's and the C
libraries') going to one log. Environment variables read while a module is imported
(vLLM's logging settings, ``CUDA_VISIBLE_DEVICES``, ...) cannot change in a fork: the
client sends such requests to a fresh interpreter instead (:data:`IMPORT_TIME_ENV`).

Nothing here imports torch or vLLM unless the server is started with them.
"""
from __future__ import annotations

import builtins
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

# Prefixes of environment variables that a library may read when it is imported.
IMPORT_TIME_ENV = ("VLLM_LOGGING", "VLLM_CONFIGURE_LOGGING", "NO_COLOR", "CUDA_", "NVIDIA_", "PYTHON",
                   "LD_", "TORCH", "TRITON", "HF_", "TRANSFORMERS", "TOKENIZERS")


_PROTO_FD = -1  # the server's protocol pipe; a child closes its copy


class ForkServerError(RuntimeError):
    """The server could not start, or stopped answering."""


def import_time_keys(a: dict[str, str], b: dict[str, str]) -> list[str]:
    """The keys that differ between two environments and that an import may have read."""
    keys = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    return sorted(k for k in keys if k.startswith(IMPORT_TIME_ENV))


# ----------------------------------------------------------------------------- server


def _native_threads() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


def _cuda_initialized() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def _run_in_child(req: dict, log_fd: int, payload_path: str) -> None:
    """The forked child: become ``python -c code``; never returns."""
    code = 1
    try:
        os.setpgrp()  # its own process group, so a timeout can kill what it started too
        if _PROTO_FD >= 0:
            os.close(_PROTO_FD)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        stdin_fd = os.open(payload_path, os.O_RDONLY)
        os.dup2(stdin_fd, 0)
        os.close(stdin_fd)
        # The server's sys.stdin may hold read-ahead protocol lines: replace the object.
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout.reconfigure(line_buffering=True)
        os.environ.clear()
        os.environ.update(req.get("env") or {})
        if req.get("cwd"):
            os.chdir(req["cwd"])
        sys.argv = ["-c"]
        try:
            exec(compile(req["code"], "<string>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - report it the way python -c would
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)  # never fall back into the server's loop


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """Exit code of ``pid`` (negative: killed by that signal), and whether it timed out."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if time.monotonic() > deadline:
            _kill_group(pid)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), True
        time.sleep(0.02)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_one(req: dict) -> dict:
    """Fork, run one request in the child, collect its log and exit code."""
    log_fd, log_path = tempfile.mkstemp(prefix="forkserver-", suffix=".log")
    with tempfile.NamedTemporaryFile("w", prefix="forkserver-", suffix=".json", delete=False,
                                     encoding="utf-8") as f:
        json.dump(req.get("payload"), f)
        payload_path = f.name
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _run_in_child(req, log_fd, payload_path)
    os.close(log_fd)
    returncode, timed_out = _wait(pid, float(req.get("timeout") or 300))
    _kill_group(pid)  # whatever the child left running (compile workers, a hung helper)
    wall_s = time.perf_counter() - start
    log = Path(log_path).read_text(encoding="utf-8", errors="replace")
    for path in (log_path, payload_path):
        os.unlink(path)
    return {"returncode": returncode, "log": log, "timed_out": timed_out, "wall_s": round(wall_s, 3)}


def serve(preload: list[str]) -> int:
    # The protocol keeps the real stdout; anything printed in this process (vLLM logs to
    # stdout) goes to stderr instead, where the client keeps it as the server's log.
    global _PROTO_FD
    _PROTO_FD = os.dup(1)
    proto = os.fdopen(_PROTO_FD, "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)

    def send(obj: dict) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    start = time.perf_counter()
    try:
        for name in preload:
            importlib.import_module(name)
        if _cuda_initialized():
            raise ForkServerError(f"importing {', '.join(preload)} initialized CUDA; a forked child could not use it")
    except BaseException as exc:  # noqa: BLE001 - any failure means: no server
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    send({"ready": True, "import_s": round(time.perf_counter() - start, 3), "threads": _native_threads(),
          "pid": os.getpid(), "preload": preload})
    for line in sys.stdin:
        if line.strip():
            send(run_one(json.loads(line)))
    return 0


# ----------------------------------------------------------------------------- client


class ForkServer:
    """Client side: start the server, send it requests, stop it.

    >>> server = ForkServer(["json"])                       # doctest: +SKIP
    >>> server.run("print('hi')", None, dict(os.environ))    # doctest: +SKIP
    {'returncode': 0, 'log': 'hi\\n', 'timed_out': False, 'wall_s': 0.004}
    """

    def __init__(self, preload: list[str] | tuple[str, ...], env: dict[str, str] | None = None,
                 start_timeout: float = 300):
        self.env = dict(os.environ if env is None else env)
        self.preload = list(preload)
        self._lock = threading.Lock()
        self._errlog = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen([sys.executable, "-m", "course.forkserver", *self.preload],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errlog,
                                     env=self.env, text=True, encoding="utf-8", bufsize=1)
        hello = self._read(start_timeout)
        if not hello.get("ready"):
            self.close()
            raise ForkServerError(hello.get("error", "the server did not say it was ready"))
        self.import_s: float = hello["import_s"]
        self.threads: int = hello["threads"]

    def _read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            why = "stopped" if ready else f"did not answer in {timeout:.0f}s"
            raise ForkServerError(f"fork server {why}; its log ends:\n{self.server_log()[-3000:]}")
        return json.loads(line)

    def server_log(self) -> str:
        self._errlog.seek(0)
        return self._errlog.read().decode("utf-8", errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, code: str, payload, env: dict[str, str], timeout: float = 300, cwd: str | None = None) -> dict:
        """Run ``code`` in a forked child; returns the server's answer (see the module doc)."""
        req = {"code": code, "payload": payload, "env": env, "cwd": cwd or os.getcwd(), "timeout": timeout}
        with self._lock:
            if not self.alive():
                raise ForkServerError("fork server is not running")
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            return self._read(timeout + 60)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
