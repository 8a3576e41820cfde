"""Lab 01-04: record what every step's batch is made of. Your work: three functions.

A probe wraps ``scheduler.schedule`` on one engine instance: it calls the real method,
keeps a *copy* of ``num_scheduled_tokens`` and returns the output untouched, so the
engine behaves exactly as without it. Upstream's per-step plan is the same dict on
vllm/v1/core/sched/output.py:181@0decac0 (SchedulerOutput).
"""
from __future__ import annotations

from course.lab_support.phase_01 import print_batches
from mini_vllm import LLMEngine, SamplingParams


def install_probe(engine: LLMEngine, trace: list[dict[str, int]]) -> None:
    """Make every ``engine.scheduler.schedule()`` append a copy of its
    ``num_scheduled_tokens`` to ``trace``. Behaviour is otherwise unchanged."""
    raise NotImplementedError("TODO 1: record every step's batch without changing the engine (README task 1)")


def trace_batches(prompts: list[str], max_tokens: int = 4, **engine_kwargs) -> tuple[list[str], list[dict[str, int]]]:
    """Add every prompt (greedy, EOS ignored), run to completion with the probe on, and
    return the request ids (in prompt order) and the per-step batch composition."""
    raise NotImplementedError("TODO 2: run the prompts to the end with the probe on (README task 2)")


def label_steps(trace: list[dict[str, int]], prompt_lens: dict[str, int]) -> list[str]:
    """``"prefill"``, ``"decode"`` or ``"mixed"`` for each step.

    A request's chunk is prefill while the tokens scheduled for it so far (before this
    step) are fewer than its prompt; otherwise it is a decode. A step holding both kinds
    is mixed; a step that scheduled nothing is ``"idle"``. (No preemption here: a
    preempted request would prefill again.)
    """
    raise NotImplementedError("TODO 3: call each step prefill, decode, mixed or idle (README task 3)")


if __name__ == "__main__":
    print_batches(trace_batches, label_steps)
