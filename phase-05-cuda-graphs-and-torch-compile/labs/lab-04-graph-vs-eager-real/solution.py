"""Lab 05-04 reference: inter-token latency of real vLLM, eager vs CUDA graphs.

The CPU half (ITL arithmetic, ratios, the table, reading the capture log) is this file,
plain Python, tested everywhere. ``course.lab_support.phase_05.measure_arm`` runs vLLM
0.22.1 in a child process on a GPU and calls these functions, so importing this module
never pulls in torch or vllm.

ITL is measured by difference: the same batch is generated once with ``max_tokens=1``
(prefill plus the first token) and once with ``1 + extra_tokens``. The extra wall time
divided by ``extra_tokens`` is the time of one decode step; prefill, start-up and the
first token cancel out.
"""
from __future__ import annotations

import re
from collections.abc import Mapping


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
    bar = re.compile(r"Capturing CUDA graphs \(([^)]*)\):\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)")
    passes: dict[str, int] = {}
    for name, _done, total in bar.findall(log):
        passes[name] = int(total)
    done = re.search(r"Graph capturing finished in (\d+) secs, took ([\d.]+) GiB", log)
    return {
        "passes": passes,
        "capture_s": int(done.group(1)) if done else None,
        "capture_gib": float(done.group(2)) if done else None,
    }
