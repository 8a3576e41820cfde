"""Scaffolding phase 05's labs hand the learner: report tables built from the learner's functions.

Each lab's ``__main__`` block passes its own module in, so ``python starter.py`` and
``python solution.py`` print the same tables from whichever implementation they hold,
and the formatting code exists once.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence

from course.gpu_fixtures import run_child

# Lab 05-04: the batch sizes each arm measures.
BATCH_SIZES = (1, 8, 64)


def format_launch_report(lab) -> str:
    """Lab 05-02: break-even by model size, and the fade of the speedup as GPU time grows."""
    lines = ["num_ops  capture  crossover  speedup@1000"]
    for n in (1, 4, 32, 300):
        for c in (n, 5 * n):
            lines.append(f"{n:7d}  {c:7d}  {str(lab.crossover(n, c)):>9}  {lab.per_call_speedup(n, 1000, c):12.2f}")
    lines += ["", "gpu_us  launch_share  step_speedup   (300 ops, 5 us/launch)"]
    for g in (0.0, 150.0, 1500.0, 15000.0):
        f = lab.launch_fraction(300, 5.0, g)
        lines.append(f"{g:6.0f}  {f:12.3f}  {lab.amdahl_speedup(f, 300):12.2f}")
    return "\n".join(lines)


def capture_progress_bars(dispatcher) -> list[str]:
    """Lab 05-03: the start-up progress bars' titles and lengths, in the model runner's format.

    One bar per capture pass of ``dispatcher.get_capture_descs()``; the format is
    vllm/v1/worker/gpu_model_runner.py:6518@0decac0 ("Capturing CUDA graphs ({}, {})").
    """
    bars = []
    for mode, descs in dispatcher.get_capture_descs():
        kind = "decode" if descs[0].uniform else "mixed prefill-decode"
        bars.append(f"Capturing CUDA graphs ({kind}, {mode.name}): {len(descs)}/{len(descs)}")
    return bars


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


def measure_arm(lab, model_dir: str, enforce_eager: bool, batch_sizes: Sequence[int] = BATCH_SIZES,
                extra_tokens: int = 32, repeats: int = 3, timeout: float = 300) -> dict[str, object]:
    """Lab 05-04: one engine in a child process; ITL at each batch size and its capture log,
    computed with the lab module's ``itl_ms`` and ``parse_capture_log``. GPU only.

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
    result["itl_ms"] = {int(b): lab.itl_ms(t_s, t_l, extra_tokens) for b, (t_s, t_l) in result.pop("timings").items()}
    result["capture"] = lab.parse_capture_log(log)
    return result


def format_ladder_report(lab) -> str:
    """Lab 05-05: the numbers its README quotes, computed with the lab module's functions."""
    top = lab.max_cudagraph_capture_size(max_num_seqs=32, max_num_batched_tokens=8192)
    ladder = lab.default_capture_sizes(top)
    lines = [f"max_num_seqs=32 -> top {top}, ladder {ladder}"]
    for n in (1, 3, 33, 40, 63, 65):
        rung = lab.select_capture_size(ladder, n)
        where = "eager" if rung is None else f"runs at {rung}"
        lines.append(f"  {n:3d} tokens: {where:>11}, padding {lab.padded_tokens(ladder, n)}")
    lines.append("")
    lines.append("every step size 1..64 once:")
    lines.append("ladder     rungs  padding  share")
    ladders = {
        "pow2": [1, 2, 4, 8, 16, 32, 64],
        "default": ladder,
        "every4": [1, 2, 4] + list(range(8, 65, 4)),
        "every1": list(range(1, 65)),
    }
    for name, rungs, pad, share in lab.compare_ladders(ladders, list(range(1, 65))):
        lines.append(f"{name:<9} {rungs:6d} {pad:8d} {share:6.1%}")
    return "\n".join(lines)
