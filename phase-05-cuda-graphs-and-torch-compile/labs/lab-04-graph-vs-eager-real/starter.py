"""Lab 05-04 (your work): inter-token latency of real vLLM, eager vs CUDA graphs.

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
    """Milliseconds per decode step, from the two timings of one batch. README task 1."""
    raise NotImplementedError("TODO 1: one decode step's time (README task 1)")


def speedup_ratios(eager_itl_ms: Mapping[int, float], graph_itl_ms: Mapping[int, float]) -> dict[int, float]:
    """The eager over graphs ratio per batch size. README task 2."""
    raise NotImplementedError("TODO 2: the ratio per batch size (README task 2)")


def format_ratio_table(eager_itl_ms: Mapping[int, float], graph_itl_ms: Mapping[int, float]) -> str:
    """The markdown ratio table of the README. README task 3."""
    raise NotImplementedError("TODO 3: format the table (README task 3)")


def parse_capture_log(log: str) -> dict[str, object]:
    """The capture passes with their totals, and the capture time and memory, from a vLLM log. README task 4."""
    raise NotImplementedError("TODO 4: read the capture log (README task 4)")
