"""Lab 01-04: record what every step's batch is made of. Your work: three functions.

A probe wraps ``scheduler.schedule`` on one engine instance: it calls the real method,
keeps a *copy* of ``num_scheduled_tokens`` and returns the output untouched, so the
engine behaves exactly as without it. Upstream's per-step plan is the same dict on
vllm/v1/core/sched/output.py:181@0decac0 (SchedulerOutput).
"""
from __future__ import annotations

from mini_vllm import LLMEngine, SamplingParams


def install_probe(engine: LLMEngine, trace: list[dict[str, int]]) -> None:
    """Make every ``engine.scheduler.schedule()`` append a copy of its
    ``num_scheduled_tokens`` to ``trace``. Behaviour is otherwise unchanged."""
    raise NotImplementedError(
        "TODO 1: keep the original bound method, assign a closure to engine.scheduler.schedule that calls it, "
        "appends dict(out.num_scheduled_tokens) (a copy!) and returns out — see README task 1"
    )


def trace_batches(prompts: list[str], max_tokens: int = 4, **engine_kwargs) -> tuple[list[str], list[dict[str, int]]]:
    """Add every prompt (greedy, EOS ignored), run to completion with the probe on, and
    return the request ids (in prompt order) and the per-step batch composition."""
    raise NotImplementedError(
        "TODO 2: LLMEngine(**engine_kwargs), add_request each prompt with SamplingParams(temperature=0.0, "
        "max_tokens=..., ignore_eos=True), install_probe, step until has_unfinished_requests() is False — see README task 2"
    )


def label_steps(trace: list[dict[str, int]], prompt_lens: dict[str, int]) -> list[str]:
    """``"prefill"``, ``"decode"``, ``"mixed"`` (or ``"idle"`` if empty) for each step."""
    raise NotImplementedError(
        "TODO 3: keep a running total of tokens scheduled per request; a chunk is prefill while that total "
        "(before the step) is below the prompt length — see README task 3"
    )
