"""Lab 03-01: one scheduling step of continuous batching. Your work: TODOs 1-3.

``schedule_step`` is the decision half of mini_vllm/scheduler.py without preemption
(lab-04 adds that): RUNNING requests first, in admission order, then WAITING requests in
arrival order, under three limits that bind at different places: the token budget
(every request), ``max_num_seqs`` (admission only) and free KV blocks (``allocate_slots``;
at admission, blocks for the request's whole sequence, not just this step's chunk).

Upstream: vllm/v1/core/sched/scheduler.py:329@0decac0 (Scheduler.schedule).
``run_trace`` is given: it plays the model and ``update_from_output`` with the protocol
used to record vLLM 0.22.1's traces, so your scheduler's trace can be compared with
upstream's step by step.
"""

from __future__ import annotations

from collections import deque

from course.lab_support.phase_03 import Trace, make_step_scheduler
from course.lab_support.phase_03 import run_trace as _run_trace
from mini_vllm import KVCacheManager, Request, RequestStatus, SchedulerConfig


def clamp_new_tokens(num_new_tokens: int, token_budget: int, long_prefill_token_threshold: int = 0) -> int:
    """How many of a request's missing tokens it gets this step.

    Cap by the threshold first (0 = off, and it only binds when it is smaller than the
    gap), then by the remaining budget; never below 0.
    """
    raise NotImplementedError("TODO 1: clamp one request's new tokens (README task 1)")


def schedule_step(
    running: list[Request],
    waiting: deque[Request],
    kv_cache_manager: KVCacheManager,
    config: SchedulerConfig,
) -> dict[str, int]:
    """Decide this step: return {request_id: tokens to compute}, in scheduling order.

    Moves admitted requests from ``waiting`` to the end of ``running`` (status RUNNING,
    ``num_computed_tokens`` = their prefix-cache hit). It never advances counters for the
    tokens it schedules: that happens after the model ran (``run_trace``).

    TODO 2 (RUNNING): for each running request while budget is left: clamp its gap
    (num_tokens - num_computed_tokens), skip a 0, allocate_slots(request, n) (None: stop
    scheduling running requests this step), record n, spend the budget.
    TODO 3 (WAITING): while the queue is not empty, budget is left and fewer than
    max_num_seqs run: peek the front; get_computed_blocks (the prefix-cache hit); clamp
    the rest; allocate_slots(request, n, num_computed, computed_blocks,
    full_sequence_must_fit=True) (admission needs room for the whole sequence; None: break,
    no skipping ahead); move it to running, set status and num_computed_tokens, record, spend.
    """
    raise NotImplementedError("TODO 2: decide one step, the RUNNING phase then the WAITING phase (README tasks 2 and 3)")


def run_trace(
    prompts: dict[str, list[int]],
    max_tokens: int,
    config: SchedulerConfig,
    block_size: int = 16,
    num_blocks: int = 1024,
    enable_prefix_caching: bool = False,
    arrivals: dict[str, int] | None = None,
) -> Trace:
    """Drive this file's ``schedule_step`` to completion with a fake model (given; the
    driver is ``course/lab_support/phase_03.py``'s ``run_trace``)."""
    return _run_trace(schedule_step, prompts, max_tokens, config, block_size, num_blocks,
                      enable_prefix_caching, arrivals)


# Given: the engine's scheduler deciding each step with this file's schedule_step, for
# LLM(scheduler_cls=...) and `python -m mini_vllm trace ... --scheduler FILE`.
Scheduler = make_step_scheduler(schedule_step)


if __name__ == "__main__":
    # The budget-8 example: A = 11 tokens, B = 7 tokens, 4 output tokens each.
    config = SchedulerConfig(max_num_seqs=2, max_num_batched_tokens=8, max_model_len=1024)
    t = run_trace({"A": list(range(10, 21)), "B": list(range(30, 37))}, max_tokens=4, config=config)
    for i, s in enumerate(t.steps, 1):
        print(f"step {i}: {s['sched']}" + (f"  finished {s['finished']}" if s["finished"] else ""))
