"""Lab 05-05 reference: the capture-size ladder, the round-up lookup, and what padding costs.

A graph only replays at the size it was captured at, so vLLM captures a ladder of
sizes at start-up and pads each step's token count up to the next rung. The ladder is
built in ``vllm/config/vllm.py:1597@0decac0 (VllmConfig._set_cudagraph_sizes)``; the
lookup table in ``vllm/v1/cudagraph_dispatcher.py:76@0decac0 (CudagraphDispatcher._compute_bs_to_padded_graph_size)``.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def max_cudagraph_capture_size(max_num_seqs: int, max_num_batched_tokens: int,
                               num_speculative_tokens: int = 0) -> int:
    """Top of the default ladder: ``min(2 * max_num_seqs * q, 512)``, capped by the token budget.

    ``q = 1 + num_speculative_tokens`` is the number of tokens a decode step schedules
    per request.
    """
    q = 1 + num_speculative_tokens
    return min(max_num_batched_tokens, min(max_num_seqs * q * 2, 512))


def default_capture_sizes(max_capture_size: int, max_num_batched_tokens: int | None = None) -> list[int]:
    """1, 2, 4; every 8 from 8 up to 248; every 16 from 256; plus the token budget if it fits."""
    sizes = [i for i in (1, 2, 4) if i <= max_capture_size]
    if max_capture_size >= 8:
        sizes += list(range(8, min(max_capture_size + 1, 256), 8))
    if max_capture_size >= 256:
        sizes += list(range(256, max_capture_size + 1, 16))
    if max_num_batched_tokens is not None and max_num_batched_tokens <= max_capture_size:
        sizes.append(max_num_batched_tokens)
    return sorted(set(sizes))


def select_capture_size(capture_sizes: Sequence[int], num_tokens: int) -> int | None:
    """Smallest rung >= ``num_tokens``; None above the top rung (the step runs eagerly)."""
    sizes = sorted(capture_sizes)
    i = bisect.bisect_left(sizes, num_tokens)
    return sizes[i] if i < len(sizes) else None


def bs_to_padded_graph_size(capture_sizes: Sequence[int]) -> list[int]:
    """The lookup as a table indexed by token count, ``0..max``, as upstream precomputes it."""
    sizes = sorted(capture_sizes)
    table = [0] * (sizes[-1] + 1)
    for end, start in zip(sizes + [sizes[-1] + 1], [0] + sizes):
        for bs in range(start, end):
            table[bs] = start if bs == start else end
    return table


def padded_tokens(capture_sizes: Sequence[int], num_tokens: int) -> int:
    """Rows of padding one step computes: ``rung - num_tokens``; 0 when it runs eagerly."""
    rung = select_capture_size(capture_sizes, num_tokens)
    return 0 if rung is None else rung - num_tokens


@dataclass(frozen=True)
class TraceWaste:
    """Padding over a run of steps."""

    real_tokens: int
    padded_tokens: int
    graph_steps: int
    eager_steps: int

    @property
    def waste_fraction(self) -> float:
        """Share of all computed rows that were padding."""
        total = self.real_tokens + self.padded_tokens
        return self.padded_tokens / total if total else 0.0


def trace_waste(capture_sizes: Sequence[int], trace: Iterable[int]) -> TraceWaste:
    """Sum real rows, padding rows, graph steps and eager steps over a token-count trace."""
    real = pad = graph = eager = 0
    for n in trace:
        real += n
        if select_capture_size(capture_sizes, n) is None:
            eager += 1
        else:
            graph += 1
            pad += padded_tokens(capture_sizes, n)
    return TraceWaste(real, pad, graph, eager)


def compare_ladders(ladders: dict[str, Sequence[int]], trace: Sequence[int]) -> list[tuple[str, int, int, float]]:
    """One row per ladder: ``(name, rungs to capture, padding rows, padding share)``."""
    rows = []
    for name, sizes in ladders.items():
        w = trace_waste(sizes, trace)
        rows.append((name, len(sizes), w.padded_tokens, w.waste_fraction))
    return rows


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_05 import format_ladder_report

    print(format_ladder_report(sys.modules[__name__]))
