"""Lab 03-05: what a long prefill does to a neighbour's inter-token gaps.

Request A (8-token prompt) starts decoding; one step later request B arrives with a
256-token prompt. On a GPU a step takes time roughly in proportion to the tokens it
computes, so the total tokens of each step in which A decodes is a proxy for A's
inter-token latency. Without a threshold B's whole prompt shares one step with A's
decode; with ``long_prefill_token_threshold=32`` it is spread over 8 steps.

The workload and config are those of the traces ``spike_th0`` / ``spike_th32`` recorded
from vLLM 0.22.1 (mini_vllm/testdata), so the schedules can be compared step by step.
Your work: TODOs 1-2. ``step_totals`` and ``plot_gaps`` are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from course.lab_support.phase_03 import plot_gaps  # given: the figure
from mini_vllm import LLMEngine, SamplingParams

VICTIM_PROMPT = list(range(3, 11))  # A: 8 tokens


def long_prompt(n: int = 256) -> list[int]:
    """B's prompt: token ids 7..56 repeated, as in the recorded trace."""
    return [7 + i % 50 for i in range(n)]


@dataclass
class Collision:
    """One run: the per-step schedule, each request's output, and its time to first
    token in steps (the step it arrived in counts as 1)."""

    schedule: list[dict[str, int]] = field(default_factory=list)
    outputs: dict[str, list[int]] = field(default_factory=dict)
    ttft_steps: dict[str, int] = field(default_factory=dict)


def run_collision(long_prompt_len: int = 256, threshold: int = 0, max_tokens: int = 16,
                  max_num_batched_tokens: int = 8192) -> Collision:
    """A alone for one step (its prefill), then B arrives; run until both finish."""
    raise NotImplementedError("TODO 1: run a decode into a long prefill and record the steps (README task 1)")


def step_totals(schedule: list[dict[str, int]]) -> list[int]:
    """Tokens computed in each step: the step-time proxy."""
    return [sum(s.values()) for s in schedule]


def victim_gaps(schedule: list[dict[str, int]], victim: str, prompt_len: int) -> list[int]:
    """For every token the victim gets after its first, the total tokens of the step that
    produced it. The first token comes from the step that finishes the prompt; each later
    token from one more step in which the victim is scheduled."""
    raise NotImplementedError("TODO 2: the step sizes behind each of the victim's tokens (README task 2)")


if __name__ == "__main__":
    profiles = {}
    for threshold in (0, 32):
        c = run_collision(threshold=threshold)
        gaps = victim_gaps(c.schedule, "A", len(VICTIM_PROMPT))
        profiles[f"threshold={threshold}"] = gaps
        print(f"threshold={threshold:<3} A's gaps: {gaps}")
        print(f"{'':14}step totals: {step_totals(c.schedule)}")
        print(f"{'':14}worst {max(gaps)}, mean {sum(gaps) / len(gaps):.2f}, B's time to first token "
              f"{c.ttft_steps['B']} step(s)")
    try:
        print("wrote", plot_gaps(profiles, Path(__file__).with_name("decode_gaps.png")))
    except ImportError:
        print("matplotlib is not installed: no plot")
