#!/usr/bin/env python3
"""Where a GPU lab's engine start-up goes, and what the fork server saves. GPU box only.

    python tools/gpu_box/startup_profile.py          # writes $OUT (or gpu-out)/startup-profile.json
    python tools/gpu_box/startup_profile.py --smoke  # fork server up, CUDA in two forked children

Measures, on the tiny random Llama the GPU tests use:

1. a fresh ``python -c "import torch"`` and ``python -c "from vllm import LLM"``;
2. the fork server's one-time import (``course.forkserver``);
3. the same engine (``run_vllm`` defaults: eager, ``gpu_memory_utilization=0.3``,
   ``max_model_len=512``, one prompt, 16 tokens) started alternately from a fresh Python
   and from the fork server, twice each: wall time per engine and time inside ``LLM()``;
4. the same engine from the first server with a 256 MiB KV budget instead of 30% of the
   card, to see what building a pool of 1.5 million blocks costs, and from a server that
   preloads only what ``from vllm import LLM`` imports (:data:`SHALLOW_PRELOAD`);
5. one fresh-Python engine at ``VLLM_LOGGING_LEVEL=DEBUG`` with vLLM's model-info cache
   removed, which is what the first engine on a fresh machine pays, with vLLM's own
   timing lines from its log. The registry inspects the model class in a subprocess:
   vllm/model_executor/models/registry.py:875@0decac0 (inspect_model_cls);
6. ``gpu_fixtures.warm_model_info`` on that cache removed again, then a forked engine.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course import gpu_fixtures
from course.gpu_fixtures import VLLM_ENV, run_vllm

# The server's first preload list: what ``from vllm import LLM`` imports, no more. The
# default (gpu_fixtures.FORK_PRELOAD) adds the modules every engine imports inside LLM().
SHALLOW_PRELOAD = ("torch", "vllm", "vllm.entrypoints.llm")
TIMING = re.compile(r"(Elapsed time|took|seconds|secs)")


def fresh_import(stmt: str) -> float:
    env = {**os.environ, **VLLM_ENV}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", stmt], check=True, env=env, capture_output=True)
    return round(time.perf_counter() - t, 2)


def engine(model: str, fork: bool, **kwargs) -> dict:
    """One engine, forked or from a fresh Python; MINI_VLLM_FORK is put back afterwards,
    so no step changes what the next one measures (the 2026-12-05 profile's warm-up step
    found it left at "0" and timed nothing)."""
    before = os.environ.get("MINI_VLLM_FORK")
    os.environ["MINI_VLLM_FORK"] = "1" if fork else "0"
    env = kwargs.pop("env", None)
    t = time.perf_counter()
    try:
        run = run_vllm(model, ["paged attention in one sentence:"], llm_kwargs={"enforce_eager": True, **kwargs},
                       env=env)
    finally:
        if before is None:
            del os.environ["MINI_VLLM_FORK"]
        else:
            os.environ["MINI_VLLM_FORK"] = before
    kv = re.search(r"GPU KV cache size: ([\d,]+) tokens", run.log)
    return {"fork": fork, "wall_s": round(time.perf_counter() - t, 2), "llm_init_s": round(run.startup_s, 2),
            "kv_tokens": int(kv.group(1).replace(",", "")) if kv else None,
            "timing_lines": [ln.strip()[-160:] for ln in run.log.splitlines() if TIMING.search(ln)][:40]}


SMOKE = """
import json, torch
x = torch.ones(1 << 28, device="cuda")  # 1 GiB
free, total = torch.cuda.mem_get_info()
print("@@RESULT@@" + json.dumps({"device": torch.cuda.get_device_name(), "sum": x.sum().item(), "free_gib": free / 2**30}))
"""


def smoke() -> int:
    """Start the fork server with vLLM imported, and use CUDA from two forked children."""
    os.environ["MINI_VLLM_FORK"] = "1"
    t = time.perf_counter()
    server = gpu_fixtures.fork_server()
    if server is None:
        print("fork server did not start:", gpu_fixtures._server_error)
        return 1
    print(f"fork server up in {time.perf_counter() - t:.1f} s (import {server.import_s} s, {server.threads} threads)")
    for _ in range(2):
        result, log, returncode = gpu_fixtures.run_child(SMOKE, None, timeout=120)
        print(returncode, result if result else log[-2000:])
        if result is None:
            return 1
    return 0


def start_server() -> dict:
    """Start (or reuse) the session's fork server and say how long it took."""
    t = time.perf_counter()
    server = gpu_fixtures.fork_server()
    if server is None:
        return {"error": gpu_fixtures._server_error}
    return {"start_s": round(time.perf_counter() - t, 2), "import_s": server.import_s, "threads": server.threads}


def main() -> int:
    if sys.argv[1:] == ["--smoke"]:
        return smoke()
    out = Path(os.environ.get("OUT", "gpu-out"))
    out.mkdir(parents=True, exist_ok=True)
    model = str(gpu_fixtures.build_tiny_llama(Path(tempfile.mkdtemp()) / "tiny-llama"))
    report: dict = {"environment": gpu_fixtures.environment_info()}

    def save(key: str, value) -> None:  # after every step, so a cut-short run still leaves its numbers
        report[key] = value
        (out / "startup-profile.json").write_text(json.dumps(report, indent=2))
        print(f"{key}: {json.dumps(value)[:300]}", flush=True)

    save("fresh_import_torch_s", fresh_import("import torch"))
    save("fresh_import_vllm_s", fresh_import("from vllm import LLM"))

    os.environ["MINI_VLLM_FORK"] = "1"
    save("fork_server", start_server())
    runs = []
    for fork in (False, True, False, True):
        runs.append(engine(model, fork))
        save("engines_fresh", [r for r in runs if not r["fork"]])
        save("engines_fork", [r for r in runs if r["fork"]])
    save("engine_fork_256mib_kv", engine(model, True, kv_cache_memory_bytes=256 << 20))

    gpu_fixtures.reset_fork_server()
    os.environ["MINI_VLLM_FORK_PRELOAD"] = ",".join(SHALLOW_PRELOAD)
    save("fork_server_shallow", start_server())
    ok = "error" not in report["fork_server_shallow"]
    save("engines_fork_shallow", [engine(model, True) for _ in range(2)] if ok else [])
    gpu_fixtures.reset_fork_server()
    del os.environ["MINI_VLLM_FORK_PRELOAD"]

    shutil.rmtree(Path.home() / ".cache" / "vllm" / "modelinfos", ignore_errors=True)
    save("engine_fresh_cold_registry_debug", engine(model, False, env={"VLLM_LOGGING_LEVEL": "DEBUG"}))
    shutil.rmtree(Path.home() / ".cache" / "vllm" / "modelinfos", ignore_errors=True)
    save("fork_server_again", start_server())  # so that the warm-up's own time is all that is timed
    t = time.perf_counter()
    warmed = gpu_fixtures.warm_model_info()
    save("warm_model_info_cold", {"archs": warmed, "s": round(time.perf_counter() - t, 2)})
    save("engine_fork_after_warm_up", engine(model, True))
    print(f"fresh python: import torch {report['fresh_import_torch_s']} s, from vllm import LLM "
          f"{report['fresh_import_vllm_s']} s; fork server {report['fork_server']}; "
          f"shallow preload {report['fork_server_shallow']}; model-info warm-up {report['warm_model_info_cold']}")
    print(f"{'engine':<34} {'wall s':>7} {'LLM() s':>8} {'KV tokens':>12}")
    rows = [("fresh python", r) for r in report["engines_fresh"]] + [("fork server", r) for r in report["engines_fork"]]
    rows += [("fork server (shallow preload)", r) for r in report["engines_fork_shallow"]]
    rows += [("fork server, 256 MiB KV", report["engine_fork_256mib_kv"]),
             ("fresh, cold registry, DEBUG", report["engine_fresh_cold_registry_debug"]),
             ("fork server, after warm_model_info", report["engine_fork_after_warm_up"])]
    for name, r in rows:
        print(f"{name:<34} {r['wall_s']:>7} {r['llm_init_s']:>8} {r['kv_tokens'] or 0:>12,}")
    for line in report["engine_fresh_cold_registry_debug"]["timing_lines"]:
        print("  ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
