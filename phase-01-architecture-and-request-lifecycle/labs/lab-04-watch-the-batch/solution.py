"""Lab 01-04 reference: record what every step's batch is made of.

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
    original = engine.scheduler.schedule

    def probed_schedule():
        out = original()
        trace.append(dict(out.num_scheduled_tokens))
        return out

    engine.scheduler.schedule = probed_schedule


def trace_batches(prompts: list[str], max_tokens: int = 4, **engine_kwargs) -> tuple[list[str], list[dict[str, int]]]:
    """Add every prompt (greedy, EOS ignored), run to completion with the probe on, and
    return the request ids (in prompt order) and the per-step batch composition."""
    engine = LLMEngine(**engine_kwargs)
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    ids = [engine.add_request(p, params) for p in prompts]
    trace: list[dict[str, int]] = []
    install_probe(engine, trace)
    while engine.has_unfinished_requests():
        engine.step()
    return ids, trace


def label_steps(trace: list[dict[str, int]], prompt_lens: dict[str, int]) -> list[str]:
    """``"prefill"``, ``"decode"`` or ``"mixed"`` for each step.

    A request's chunk is prefill while the tokens scheduled for it so far (before this
    step) are fewer than its prompt; otherwise it is a decode. A step holding both kinds
    is mixed; a step that scheduled nothing is ``"idle"``. (No preemption here: a
    preempted request would prefill again.)
    """
    done = {rid: 0 for rid in prompt_lens}
    labels = []
    for step in trace:
        kinds = set()
        for rid, n in step.items():
            kinds.add("prefill" if done[rid] < prompt_lens[rid] else "decode")
            done[rid] += n
        labels.append("idle" if not kinds else kinds.pop() if len(kinds) == 1 else "mixed")
    return labels


if __name__ == "__main__":
    print_batches(trace_batches, label_steps)
