"""Lab 05-05 (your work): the capture-size ladder, the round-up lookup, and what padding costs.

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
    """Top of the default capture-size ladder. README task 1."""
    raise NotImplementedError("TODO 1: the top of the ladder (README task 1)")


def default_capture_sizes(max_capture_size: int, max_num_batched_tokens: int | None = None) -> list[int]:
    """The default ladder up to max_capture_size, sorted, without duplicates. README task 2."""
    raise NotImplementedError("TODO 2: build the ladder (README task 2)")


def select_capture_size(capture_sizes: Sequence[int], num_tokens: int) -> int | None:
    """The rung a step of num_tokens runs at, or None when it runs eagerly. README task 3."""
    raise NotImplementedError("TODO 3: look the rung up (README task 3)")


def bs_to_padded_graph_size(capture_sizes: Sequence[int]) -> list[int]:
    """The lookup as a table indexed by token count 0..max. README task 3."""
    raise NotImplementedError("TODO 3: precompute the lookup table (README task 3)")


def padded_tokens(capture_sizes: Sequence[int], num_tokens: int) -> int:
    """Rows of padding one step computes. README task 4."""
    raise NotImplementedError("TODO 4: price one step's padding (README task 4)")


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
    """Real rows, padding rows, graph steps and eager steps over a trace of step sizes. README task 5."""
    raise NotImplementedError("TODO 5: account for a trace (README task 5)")


def compare_ladders(ladders: dict[str, Sequence[int]], trace: Sequence[int]) -> list[tuple[str, int, int, float]]:
    """One row per ladder: name, rungs to capture, padding rows, padding share. README task 6."""
    raise NotImplementedError("TODO 6: compare ladders (README task 6)")


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_05 import format_ladder_report

    print(format_ladder_report(sys.modules[__name__]))
