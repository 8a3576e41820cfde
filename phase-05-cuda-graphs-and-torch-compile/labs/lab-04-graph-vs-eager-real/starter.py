"""Lab 05-04: inter-token latency of real vLLM, eager vs CUDA graphs.

TODOs 1-4 are CPU code, graded anywhere; ``measure_arm`` (given) runs the experiment on
a GPU with vLLM 0.22.1 and calls your functions. Grade yourself from the phase folder:
``LAB_IMPL=starter pytest -q labs/lab-04-graph-vs-eager-real`` (``-m gpu`` on the GPU box).
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence

from course.gpu_fixtures import run_child

BATCH_SIZES = (1, 8, 64)

_CAPTURE_BAR = re.compile(r"Capturing CUDA graphs \(([^)]*)\):\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)")
_CAPTURE_DONE = re.compile(r"Graph capturing finished in (\d+) secs, took ([\d.]+) GiB")


def itl_ms(t_one_token_s: float, t_many_tokens_s: float, extra_tokens: int) -> float:
    """Milliseconds per decode step: the extra time over the extra tokens."""
    raise NotImplementedError("TODO 1: (t_many - t_one) / extra_tokens, in milliseconds; reject extra_tokens <= 0 — see README step 1")


def speedup_ratios(eager_itl_ms: Mapping[int, float], graph_itl_ms: Mapping[int, float]) -> dict[int, float]:
    """``eager / graphs`` per batch size both arms measured, in batch order; > 1: graphs faster."""
    raise NotImplementedError("TODO 2: eager / graphs for every batch size both arms measured, in batch order — see README step 2")


def format_ratio_table(eager_itl_ms: Mapping[int, float], graph_itl_ms: Mapping[int, float]) -> str:
    """A markdown table: batch, both ITLs (ms, 2 decimals), the ratio (2 decimals, with ×)."""
    raise NotImplementedError("TODO 3: header, alignment row, then one row per batch in the README's format — see README step 3")


def parse_capture_log(log: str) -> dict[str, object]:
    """The capture passes and their totals, and the capture time and memory, from a vLLM log.

    A tqdm bar redraws itself many times; each pass counts once, with its final total.
    Returns ``{"passes": {"decode, FULL": 11, ...}, "capture_s": 3, "capture_gib": 0.05}``
    (the last two None when the log has no capture line, e.g. with ``enforce_eager``).
    """
    raise NotImplementedError("TODO 4: one entry per capture pass with its total (use _CAPTURE_BAR), plus secs and GiB from _CAPTURE_DONE — see README step 4")


_CHILD = textwrap.dedent('''
    import json, statistics, sys, time
    spec = json.loads(sys.stdin.read())
    from vllm import LLM, SamplingParams
    llm = LLM(model=spec["model"], **spec["llm_kwargs"])
    cc = llm.llm_engine.vllm_config.compilation_config
    prompt = {"prompt_token_ids": list(range(2, 10))}
    short = SamplingParams(max_tokens=1, temperature=0.0, ignore_eos=True)
    long = SamplingParams(max_tokens=1 + spec["extra_tokens"], temperature=0.0, ignore_eos=True)

    def timed(batch, params):
        t0 = time.perf_counter()
        llm.generate([prompt] * batch, params, use_tqdm=False)
        return time.perf_counter() - t0

    timings = {}
    for b in spec["batch_sizes"]:
        timed(b, long)
        t_short = statistics.median([timed(b, short) for _ in range(spec["repeats"])])
        t_long = statistics.median([timed(b, long) for _ in range(spec["repeats"])])
        timings[str(b)] = [t_short, t_long]
    print("@@RESULT@@" + json.dumps({
        "timings": timings,
        "cudagraph_mode": str(cc.cudagraph_mode),
        "compilation_mode": getattr(cc.mode, "name", str(cc.mode)),
        "cudagraph_capture_sizes": list(cc.cudagraph_capture_sizes or []),
    }), flush=True)
''')


def measure_arm(model_dir: str, enforce_eager: bool, batch_sizes: Sequence[int] = BATCH_SIZES,
                extra_tokens: int = 32, repeats: int = 3, timeout: float = 300) -> dict[str, object]:
    """One engine in a child process: ITL at each batch size, plus its capture log. GPU only.

    ``max_num_seqs`` is the largest batch (64), so the default ladder tops at 128; a small
    ``max_model_len`` and a third of the GPU keep start-up short.
    """
    spec = {
        "model": str(model_dir),
        "batch_sizes": list(batch_sizes),
        "extra_tokens": extra_tokens,
        "repeats": repeats,
        "llm_kwargs": {"enforce_eager": enforce_eager, "max_model_len": 256, "max_num_seqs": max(batch_sizes),
                       "gpu_memory_utilization": 0.3, "seed": 0},
    }
    result, log, returncode = run_child(_CHILD, spec, timeout=timeout)
    if returncode != 0 or result is None:
        tail = "\n".join(log.splitlines()[-40:])
        raise RuntimeError(f"vLLM child failed (exit {returncode}):\n{tail}")
    result["itl_ms"] = {int(b): itl_ms(t_s, t_l, extra_tokens) for b, (t_s, t_l) in result.pop("timings").items()}
    result["capture"] = parse_capture_log(log)
    return result
