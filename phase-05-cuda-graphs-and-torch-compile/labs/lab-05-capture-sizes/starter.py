"""Lab 05-05: the capture-size ladder, the round-up lookup, and what padding costs.

Fill in the TODOs in order (README.md, "Tasks"). Grade yourself from the phase folder:
``LAB_IMPL=starter pytest -q labs/lab-05-capture-sizes``.
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
    raise NotImplementedError("TODO 1: min(2 * max_num_seqs * q, 512), then cap by the token budget — see README step 1")


def default_capture_sizes(max_capture_size: int, max_num_batched_tokens: int | None = None) -> list[int]:
    """1, 2, 4; every 8 from 8 up to 248; every 16 from 256; plus the token budget if it fits."""
    raise NotImplementedError("TODO 2: 1, 2, 4, every 8 below 256, every 16 from 256, plus the budget if it fits; sorted, no duplicates — see README step 2")


def select_capture_size(capture_sizes: Sequence[int], num_tokens: int) -> int | None:
    """Smallest rung >= ``num_tokens``; None above the top rung (the step runs eagerly)."""
    raise NotImplementedError("TODO 3: smallest rung >= num_tokens, None above the top (bisect) — see README step 3")


def bs_to_padded_graph_size(capture_sizes: Sequence[int]) -> list[int]:
    """The lookup as a table indexed by token count, ``0..max``, as upstream precomputes it."""
    raise NotImplementedError("TODO 3: table[n] = the rung that n pads to, for n in 0..max — see README step 3")


def padded_tokens(capture_sizes: Sequence[int], num_tokens: int) -> int:
    """Rows of padding one step computes: ``rung - num_tokens``; 0 when it runs eagerly."""
    raise NotImplementedError("TODO 4: rung - num_tokens, or 0 when the step runs eagerly — see README step 4")


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
    raise NotImplementedError("TODO 5: sum real rows, padding rows, graph steps, eager steps over the trace — see README step 5")


def compare_ladders(ladders: dict[str, Sequence[int]], trace: Sequence[int]) -> list[tuple[str, int, int, float]]:
    """One row per ladder: ``(name, rungs to capture, padding rows, padding share)``."""
    raise NotImplementedError("TODO 6: one (name, len(sizes), padding rows, waste_fraction) row per ladder — see README step 6")


def format_report() -> str:
    """The numbers the README quotes."""
    top = max_cudagraph_capture_size(max_num_seqs=32, max_num_batched_tokens=8192)
    ladder = default_capture_sizes(top)
    lines = [f"max_num_seqs=32 -> top {top}, ladder {ladder}"]
    for n in (1, 3, 33, 40, 63, 65):
        rung = select_capture_size(ladder, n)
        where = "eager" if rung is None else f"runs at {rung}"
        lines.append(f"  {n:3d} tokens: {where:>11}, padding {padded_tokens(ladder, n)}")
    lines.append("")
    lines.append("every step size 1..64 once:")
    lines.append("ladder     rungs  padding  share")
    ladders = {
        "pow2": [1, 2, 4, 8, 16, 32, 64],
        "default": ladder,
        "every4": [1, 2, 4] + list(range(8, 65, 4)),
        "every1": list(range(1, 65)),
    }
    for name, rungs, pad, share in compare_ladders(ladders, list(range(1, 65))):
        lines.append(f"{name:<9} {rungs:6d} {pad:8d} {share:6.1%}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_report())
