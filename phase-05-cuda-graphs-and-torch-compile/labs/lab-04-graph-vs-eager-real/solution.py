"""Lab 05-04 reference: inter-token latency of real vLLM, eager vs CUDA graphs.

The CPU half (ITL arithmetic, ratios, the table, reading the capture log) is plain
Python and tested everywhere. ``measure_arm`` runs vLLM 0.22.1 in a child process on a
GPU, so importing this module never pulls in torch or vllm.

ITL is measured by difference: the same batch is generated once with ``max_tokens=1``
(prefill plus the first token) and once with ``1 + extra_tokens``. The extra wall time
divided by ``extra_tokens`` is the time of one decode step; prefill, start-up and the
first token cancel out.
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
    if extra_tokens <= 0:
        raise ValueError("extra_tokens must be positive")
    return (t_many_tokens_s - t_one_token_s) / extra_tokens * 1000.0


def speedup_ratios(eager_itl_ms: Mapping[int, float], graph_itl_ms: Mapping[int, float]) -> dict[int, float]:
    """``eager / graphs`` per batch size both arms measured, in batch order; > 1: graphs faster."""
    return {b: eager_itl_ms[b] / graph_itl_ms[b] for b in sorted(eager_itl_ms) if b in graph_itl_ms}


def format_ratio_table(eager_itl_ms: Mapping[int, float], graph_itl_ms: Mapping[int, float]) -> str:
    """A markdown table: batch, both ITLs (ms, 2 decimals), the ratio (2 decimals, with ×)."""
    lines = [
        "| batch | eager ITL (ms) | graphs ITL (ms) | eager / graphs |",
        "|---:|---:|---:|---:|",
    ]
    for b, r in speedup_ratios(eager_itl_ms, graph_itl_ms).items():
        lines.append(f"| {b} | {eager_itl_ms[b]:.2f} | {graph_itl_ms[b]:.2f} | {r:.2f}× |")
    return "\n".join(lines)


def parse_capture_log(log: str) -> dict[str, object]:
    """The capture passes and their totals, and the capture time and memory, from a vLLM log.

    A tqdm bar redraws itself many times; each pass counts once, with its final total.
    Returns ``{"passes": {"decode, FULL": 11, ...}, "capture_s": 3, "capture_gib": 0.05}``
    (the last two None when the log has no capture line, e.g. with ``enforce_eager``).
    """
    passes: dict[str, int] = {}
    for name, _done, total in _CAPTURE_BAR.findall(log):
        passes[name] = int(total)
    done = _CAPTURE_DONE.search(log)
    return {
        "passes": passes,
        "capture_s": int(done.group(1)) if done else None,
        "capture_gib": float(done.group(2)) if done else None,
    }


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
