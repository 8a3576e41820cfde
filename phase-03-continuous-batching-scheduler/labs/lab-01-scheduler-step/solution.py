"""Lab 03-01 reference: one scheduling step of continuous batching.

``schedule_step`` is the decision half of mini_vllm/scheduler.py without preemption
(lab-04 adds that): RUNNING requests first, in admission order, then WAITING requests in
arrival order, under three limits that bind at different places: the token budget
(every request), ``max_num_seqs`` (admission only) and free KV blocks (``allocate_slots``;
at admission, blocks for the request's whole sequence, not just this step's chunk).

Upstream: vllm/v1/core/sched/scheduler.py:329@0decac0 (Scheduler.schedule).
``run_trace`` is the harness: it plays the model and ``update_from_output`` with the same
protocol used to record vLLM 0.22.1's traces (mini_vllm/testdata/README.md), so a trace of
your scheduler can be compared with upstream's step by step.
"""

from __future__ import annotations

from collections import deque

from course.lab_support.phase_03 import Trace, make_step_scheduler
from course.lab_support.phase_03 import run_trace as _run_trace
from mini_vllm import KVCacheManager, Request, RequestStatus, SchedulerConfig


def clamp_new_tokens(num_new_tokens: int, token_budget: int, long_prefill_token_threshold: int = 0) -> int:
    """How many of a request's missing tokens it gets this step.

    The threshold (0 = off) caps one request's chunk so a long prompt cannot take the
    whole step; the budget caps what is left for everyone after it. Same order as
    vllm/v1/core/sched/scheduler.py:390@0decac0 ("if 0 < self.scheduler_config.long_prefill_token_threshold").
    """
    if 0 < long_prefill_token_threshold < num_new_tokens:
        num_new_tokens = long_prefill_token_threshold
    return max(0, min(num_new_tokens, token_budget))


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
    """
    threshold = config.long_prefill_token_threshold
    token_budget = config.max_num_batched_tokens
    scheduled: dict[str, int] = {}

    # Phase 1: RUNNING requests keep their place; a decode is a 1-token gap.
    for request in running:
        if token_budget <= 0:
            break
        num_new_tokens = clamp_new_tokens(request.num_tokens - request.num_computed_tokens, token_budget, threshold)
        if num_new_tokens == 0:
            continue
        if kv_cache_manager.allocate_slots(request, num_new_tokens) is None:
            break  # out of blocks: lab-04 preempts here instead
        scheduled[request.request_id] = num_new_tokens
        token_budget -= num_new_tokens

    # Phase 2: WAITING requests, front of the queue first, while budget and slots last.
    while waiting and token_budget > 0 and len(running) < config.max_num_seqs:
        request = waiting[0]
        computed_blocks, num_computed = kv_cache_manager.get_computed_blocks(request)
        num_new_tokens = clamp_new_tokens(request.num_tokens - num_computed, token_budget, threshold)
        # Admission asks for room for the whole sequence, not just this chunk: a prompt
        # let in on its first chunk could run the cache dry halfway through its prefill.
        # vLLM 0.22.1's default (scheduler_reserve_full_isl=True), passed at
        # vllm/v1/core/sched/scheduler.py:730@0decac0 ("full_sequence_must_fit=self.scheduler_reserve_full_isl").
        if kv_cache_manager.allocate_slots(request, num_new_tokens, num_computed, computed_blocks,
                                           full_sequence_must_fit=True) is None:
            break  # FCFS: the head does not fit, so nobody behind it jumps ahead
        waiting.popleft()
        running.append(request)
        request.status = RequestStatus.RUNNING
        request.num_computed_tokens = num_computed
        scheduled[request.request_id] = num_new_tokens
        token_budget -= num_new_tokens
    return scheduled


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
