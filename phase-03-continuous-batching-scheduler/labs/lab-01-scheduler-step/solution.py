"""Lab 03-01 reference: one scheduling step of continuous batching.

``schedule_step`` is the decision half of mini_vllm/scheduler.py without preemption
(lab-04 adds that): RUNNING requests first, in admission order, then WAITING requests in
arrival order, under three limits that bind at different places: the token budget
(every request), ``max_num_seqs`` (admission only) and free KV blocks (``allocate_slots``).

Upstream: vllm/v1/core/sched/scheduler.py:329@0decac0 (Scheduler.schedule).
``run_trace`` is the harness: it plays the model and ``update_from_output`` with the same
protocol used to record vLLM 0.22.1's traces (mini_vllm/testdata/README.md), so a trace of
your scheduler can be compared with upstream's step by step.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mini_vllm import KVCacheManager, Request, RequestStatus, SamplingParams, Scheduler, SchedulerConfig, check_stop


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
        if kv_cache_manager.allocate_slots(request, num_new_tokens, num_computed, computed_blocks) is None:
            break  # FCFS: the head does not fit, so nobody behind it jumps ahead
        waiting.popleft()
        running.append(request)
        request.status = RequestStatus.RUNNING
        request.num_computed_tokens = num_computed
        scheduled[request.request_id] = num_new_tokens
        token_budget -= num_new_tokens
    return scheduled


@dataclass
class Trace:
    """One run of ``run_trace``: per step, who ran and who finished; then the outputs."""

    steps: list[dict] = field(default_factory=list)
    outputs: dict[str, list[int]] = field(default_factory=dict)


def run_trace(
    prompts: dict[str, list[int]],
    max_tokens: int,
    config: SchedulerConfig,
    block_size: int = 16,
    num_blocks: int = 1024,
    enable_prefix_caching: bool = False,
    arrivals: dict[str, int] | None = None,
) -> Trace:
    """Drive ``schedule_step`` to completion with a fake model (given, not a TODO).

    Before step ``s`` every request whose arrival is ``s`` joins WAITING. After each
    schedule, a request whose scheduled tokens reach its last known token samples
    ``1000 + s % 100`` (the recording protocol of the golden traces); finished requests
    free their blocks and leave RUNNING.
    """
    arrivals = arrivals or {}
    kv = KVCacheManager(num_blocks, block_size, enable_prefix_caching, config.max_model_len)
    running: list[Request] = []
    waiting: deque[Request] = deque()
    pending = dict(prompts)
    requests: dict[str, Request] = {}
    trace = Trace()
    step = 0
    while pending or running or waiting:
        for rid in [r for r in pending if arrivals.get(r, 0) == step]:
            requests[rid] = Request(rid, pending.pop(rid), SamplingParams(max_tokens=max_tokens, ignore_eos=True))
            waiting.append(requests[rid])
        scheduled = schedule_step(running, waiting, kv, config)
        if not scheduled and (running or waiting):
            raise RuntimeError(f"step {step}: nothing scheduled with requests pending (the engine would stall)")
        num_running = len(running)
        finished = []
        for rid, n in scheduled.items():
            request = requests[rid]
            samples = Scheduler.needs_sample(request, n)
            request.num_computed_tokens += n
            if samples:
                request.append_output_token_ids(1000 + step % 100)
                if check_stop(request):
                    finished.append(rid)
        for rid in finished:
            kv.free(requests[rid])
            running.remove(requests[rid])
        trace.steps.append({"sched": scheduled, "finished": finished, "num_running": num_running,
                            "free_blocks": kv.num_free_blocks})
        step += 1
    trace.outputs = {rid: list(r.output_token_ids) for rid, r in requests.items()}
    return trace


if __name__ == "__main__":
    # The budget-8 example: A = 11 tokens, B = 7 tokens, 4 output tokens each.
    config = SchedulerConfig(max_num_seqs=2, max_num_batched_tokens=8, max_model_len=1024)
    t = run_trace({"A": list(range(10, 21)), "B": list(range(30, 37))}, max_tokens=4, config=config)
    for i, s in enumerate(t.steps, 1):
        print(f"step {i}: {s['sched']}" + (f"  finished {s['finished']}" if s["finished"] else ""))
