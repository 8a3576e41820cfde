"""Lab 03-04: recompute preemption, the scheduler's answer to a full KV cache.

mini_vllm's ``Scheduler.schedule`` already has the allocate-or-preempt loop: when
``allocate_slots`` returns None it pops the most recently admitted running request and
calls ``self._preempt`` on it, then retries. This lab plugs *your* ``preempt`` into that
loop (``LabScheduler``), drives the engine with a cache too small for its workload, and
checks the two halves of the contract: preemptions happen, in vLLM's order, and nobody
can tell from the outputs.

Upstream: vllm/v1/core/sched/scheduler.py:929@0decac0 (Scheduler._preempt_request).
Your work: TODOs 1-3. ``LabScheduler`` and ``make_engine`` are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mini_vllm import LLMEngine, Request, RequestStatus, SamplingParams, Scheduler


def preempt(scheduler: Scheduler, request: Request) -> None:
    """Recompute preemption of a RUNNING request the caller already removed from
    ``scheduler.running``: free all its blocks, forget its progress, and queue it at the
    *front* of WAITING so it is the first to come back.

    Its output tokens stay: on re-admission they are prefilled like prompt tokens, which
    is why the request continues exactly where it stopped.
    """
    raise NotImplementedError("TODO 1: free the request's blocks, status PREEMPTED, num_computed_tokens 0, num_preemptions + 1, appendleft to waiting — see README step 1")


class LabScheduler(Scheduler):
    """mini_vllm's scheduler with your ``preempt`` in its allocate-or-preempt loop (given)."""

    def _preempt(self, request: Request) -> None:
        preempt(self, request)


def make_engine(**engine_kwargs) -> LLMEngine:
    """An ``LLMEngine`` that builds a ``LabScheduler`` through the engine's seam,
    ``SchedulerConfig.scheduler_cls``, as upstream's engine core builds the class its
    scheduler config names (given)."""
    return LLMEngine(scheduler_cls=LabScheduler, **engine_kwargs)


@dataclass
class PreemptionRun:
    """What one run did. Steps are numbered from 1, as in the printed traces."""

    outputs: dict[str, list[int]] = field(default_factory=dict)
    schedule: list[dict[str, int]] = field(default_factory=list)
    preemptions: list[tuple[int, str]] = field(default_factory=list)
    total_scheduled_tokens: int = 0
    engine: LLMEngine | None = None


def run(prompts: dict[str, list[int]], max_tokens: int, num_blocks: int, block_size: int = 4,
        temperature: float = 0.0, enable_prefix_caching: bool = False) -> PreemptionRun:
    """Generate every prompt (ids = the dict's keys, ``ignore_eos``) on ``make_engine``
    with ``num_blocks`` blocks; record the schedule and every (step, victim).

    Prefix caching is off by default, as in the recorded vLLM trace; switched on, a
    re-admitted request can find some of its own freed blocks still cached.
    """
    raise NotImplementedError("TODO 2: make_engine(...), add every prompt under its id, step to the end, fill a PreemptionRun from step_stats — see README step 2")


def min_blocks_without_preemption(prompt_lens: list[int], max_tokens: int, block_size: int) -> int:
    """Smallest ``num_blocks`` with which requests that all run at once never preempt.

    A request's last sampled token never gets K/V, so at its peak it holds slots for
    prompt + max_tokens - 1 tokens; add the null block (block 0), which is never handed out.
    """
    raise NotImplementedError("TODO 3: 1 null block + sum of ceil((prompt + max_tokens - 1) / block_size) — see README step 3")


if __name__ == "__main__":
    prompts = {f"p{i}": [20 + i] * 10 for i in range(4)}
    cramped = run(prompts, max_tokens=20, num_blocks=13)
    roomy = run(prompts, max_tokens=20, num_blocks=256)
    cached = run(prompts, max_tokens=20, num_blocks=13, enable_prefix_caching=True)
    for i, step in enumerate(cramped.schedule, 1):
        victims = [v for s, v in cramped.preemptions if s == i]
        print(f"step {i:>2}: {step}" + (f"  preempted {victims}" if victims else ""))
    print(f"cramped: {len(cramped.schedule)} steps, {cramped.total_scheduled_tokens} tokens; "
          f"roomy: {len(roomy.schedule)} steps, {roomy.total_scheduled_tokens} tokens; "
          f"same outputs: {cramped.outputs == roomy.outputs}")
    print(f"cramped with prefix caching: {len(cached.schedule)} steps, {cached.total_scheduled_tokens} tokens, "
          f"preemptions {cached.preemptions}")
    print("blocks needed to never preempt:", min_blocks_without_preemption([10] * 4, 20, 4))
