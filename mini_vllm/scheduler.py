"""The continuous-batching scheduler: who runs this step, and for how many tokens.

There is no prefill phase and no decode phase. Every request has ``num_tokens`` and
``num_computed_tokens``; each step hands out at most ``max_num_batched_tokens`` tokens
so the computed counters catch up, RUNNING requests first, then WAITING ones in
arrival order. When the KV cache runs out, the most recently admitted running request
is preempted (its blocks freed, recomputed later).

Upstream: vllm/v1/core/sched/scheduler.py:329@0decac0 (Scheduler.schedule), FCFS policy.
Reproduces the recorded upstream traces step for step (see test_golden_traces.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mini_vllm.config import SchedulerConfig
from mini_vllm.kv_cache import KVCacheManager
from mini_vllm.request import Request, RequestStatus, check_stop


@dataclass
class SchedulerOutput:
    """What one step runs. Upstream ships new requests in full and running ones as
    deltas (vllm/v1/core/sched/output.py:181@0decac0 (SchedulerOutput)); mini_vllm keeps
    the request objects, which the engine reads directly.

    ``num_computed_tokens`` is each scheduled request's counter *before* this step: the
    position of its first scheduled token. ``block_ids`` is the full block table after
    allocation; ``new_block_ids`` only the blocks added this step. Upstream sends full
    tables only for new requests and the delta for the rest; copying full tables costs
    O(blocks held by the scheduled requests), the same order as the attention that
    reads those blocks, and saves the engine a persistent table.
    ``finished_req_ids`` are requests that finished since the previous step's output,
    so a worker could drop their state (upstream semantics).
    """

    num_scheduled_tokens: dict[str, int] = field(default_factory=dict)
    scheduled_requests: list[Request] = field(default_factory=list)
    scheduled_new_req_ids: list[str] = field(default_factory=list)
    scheduled_resumed_req_ids: list[str] = field(default_factory=list)
    preempted_req_ids: list[str] = field(default_factory=list)
    finished_req_ids: set[str] = field(default_factory=set)
    num_computed_tokens: dict[str, int] = field(default_factory=dict)
    block_ids: dict[str, list[int]] = field(default_factory=dict)
    new_block_ids: dict[str, list[int]] = field(default_factory=dict)

    @property
    def total_num_scheduled_tokens(self) -> int:
        return sum(self.num_scheduled_tokens.values())


class Scheduler:
    def __init__(self, config: SchedulerConfig, kv_cache_manager: KVCacheManager) -> None:
        self.config = config
        self.kv_cache_manager = kv_cache_manager
        self.max_num_seqs = config.max_num_seqs
        self.max_num_batched_tokens = config.max_num_batched_tokens
        self.max_model_len = config.max_model_len
        self.long_prefill_token_threshold = config.long_prefill_token_threshold
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.requests: dict[str, Request] = {}
        self.finished_req_ids: set[str] = set()

    def add_request(self, request: Request) -> None:
        """Queue a new request at the back of WAITING (FCFS)."""
        if request.request_id in self.requests:
            raise ValueError(f"duplicate request id {request.request_id!r}")
        if request.status != RequestStatus.WAITING or request.num_computed_tokens:
            raise ValueError(f"request {request.request_id!r} is not fresh ({request.status.name})")
        if request.num_tokens > self.max_model_len:
            raise ValueError(
                f"request {request.request_id!r} has {request.num_tokens} tokens, "
                f"max_model_len is {self.max_model_len}"
            )
        self.waiting.append(request)
        self.requests[request.request_id] = request

    def _clamp_new_tokens(self, num_new_tokens: int, token_budget: int) -> int:
        """Chunked prefill in one helper: cap by the long-prefill threshold (0 = off),
        then by what is left of this step's budget.
        vllm/v1/core/sched/scheduler.py:390@0decac0 ("if 0 < self.scheduler_config.long_prefill_token_threshold")."""
        threshold = self.long_prefill_token_threshold
        if 0 < threshold < num_new_tokens:
            num_new_tokens = threshold
        return max(0, min(num_new_tokens, token_budget))

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput(finished_req_ids=self.finished_req_ids)
        self.finished_req_ids = set()
        token_budget = self.max_num_batched_tokens
        kv = self.kv_cache_manager

        # 1) RUNNING requests, in admission order.
        idx = 0
        while idx < len(self.running) and token_budget > 0:
            request = self.running[idx]
            num_new_tokens = self._clamp_new_tokens(request.num_tokens - request.num_computed_tokens, token_budget)
            # Positions never pass max_model_len - 1; binds only with spec decode upstream.
            num_new_tokens = min(num_new_tokens, self.max_model_len - 1 - request.num_computed_tokens)
            if num_new_tokens <= 0:
                idx += 1
                continue
            while True:
                new_blocks = kv.allocate_slots(request, num_new_tokens)
                if new_blocks is not None:
                    break
                # Out of blocks: evict the lowest-priority request, which under FCFS is
                # the last one admitted; it may be `request` itself. Upstream:
                # vllm/v1/core/sched/scheduler.py:481@0decac0 ("preempted_req = self.running.pop()")
                victim = self.running.pop()
                self._preempt(victim)
                out.preempted_req_ids.append(victim.request_id)
                if victim is request:
                    break
            if new_blocks is None:
                break
            self._record(out, request, num_new_tokens, new_blocks)
            token_budget -= num_new_tokens
            idx += 1

        # 2) WAITING requests, only if nothing was preempted this step: a preemption
        # means memory is short, and admitting more would just preempt again.
        # vllm/v1/core/sched/scheduler.py:545@0decac0 ("if not preempted_reqs and").
        while not out.preempted_req_ids and self.waiting and token_budget > 0:
            if len(self.running) == self.max_num_seqs:
                break
            request = self.waiting[0]
            # Preempted requests come back with num_computed_tokens == 0 and look up the
            # prefix cache again, so they may reuse their own freed blocks.
            computed_blocks, num_computed = kv.get_computed_blocks(request)
            num_new_tokens = request.num_tokens - num_computed
            threshold = self.long_prefill_token_threshold
            if 0 < threshold < num_new_tokens:
                num_new_tokens = threshold
            if not self.config.enable_chunked_prefill and num_new_tokens > token_budget:
                break
            num_new_tokens = min(num_new_tokens, token_budget)
            new_blocks = kv.allocate_slots(request, num_new_tokens, num_computed, computed_blocks)
            if new_blocks is None:
                break  # head-of-line blocking: FCFS never skips ahead
            self.waiting.popleft()
            self.running.append(request)
            if request.status == RequestStatus.WAITING:
                out.scheduled_new_req_ids.append(request.request_id)
                request.num_cached_tokens = num_computed
            else:
                out.scheduled_resumed_req_ids.append(request.request_id)
            request.status = RequestStatus.RUNNING
            request.num_computed_tokens = num_computed
            self._record(out, request, num_new_tokens, computed_blocks + new_blocks)
            token_budget -= num_new_tokens

        assert out.total_num_scheduled_tokens <= self.max_num_batched_tokens
        assert len(self.running) <= self.max_num_seqs
        return out

    def _record(self, out: SchedulerOutput, request: Request, num_new_tokens: int, new_blocks) -> None:
        rid = request.request_id
        out.num_scheduled_tokens[rid] = num_new_tokens
        out.scheduled_requests.append(request)
        out.num_computed_tokens[rid] = request.num_computed_tokens
        out.block_ids[rid] = self.kv_cache_manager.get_block_ids(rid)
        out.new_block_ids[rid] = [b.block_id for b in new_blocks]

    def _preempt(self, request: Request) -> None:
        """Recompute preemption: free every block, forget all progress, and put the
        request at the *front* of WAITING so it is the next one re-admitted. Its output
        tokens are kept; on re-admission they are prefilled like prompt tokens.
        vllm/v1/core/sched/scheduler.py:929@0decac0 (Scheduler._preempt_request)."""
        assert request.status == RequestStatus.RUNNING, request
        self.kv_cache_manager.free(request)
        request.status = RequestStatus.PREEMPTED
        request.num_computed_tokens = 0
        request.num_preemptions += 1
        self.waiting.appendleft(request)

    @staticmethod
    def needs_sample(request: Request, num_scheduled: int) -> bool:
        """A step yields a token for a request iff it catches up completely; a prefill
        chunk that stops short samples nothing. Evaluate before update_from_output."""
        return request.num_computed_tokens + num_scheduled == request.num_tokens

    def update_from_output(self, scheduler_output: SchedulerOutput, sampled_token_ids: dict[str, int]) -> list[Request]:
        """Advance counters, append sampled tokens, reap finished requests.

        mini_vllm advances ``num_computed_tokens`` here. Upstream advances it at the end
        of ``schedule()``, in
        vllm/v1/core/sched/scheduler.py:951@0decac0 (Scheduler._update_after_schedule),
        so the next schedule() can run before this step's output arrives (async
        scheduling); with one synchronous step at a time both orders produce the same
        schedules.
        """
        finished: list[Request] = []
        for rid, n in scheduler_output.num_scheduled_tokens.items():
            request = self.requests.get(rid)
            if request is None or request.is_finished():
                continue  # aborted while the step ran
            if request.num_computed_tokens != scheduler_output.num_computed_tokens[rid]:
                raise RuntimeError(f"request {rid}: counters changed between schedule() and update_from_output()")
            sampled = self.needs_sample(request, n)
            request.num_computed_tokens += n
            if not sampled:
                if rid in sampled_token_ids:
                    raise ValueError(f"request {rid} is mid-prefill this step and must not get a token")
                continue
            if rid not in sampled_token_ids:
                raise ValueError(f"request {rid} finished its scheduled tokens and needs a sampled token")
            request.append_output_token_ids(int(sampled_token_ids[rid]))
            if check_stop(request, self.max_model_len):
                finished.append(request)
        if finished:
            done = {id(r) for r in finished}
            self.running = [r for r in self.running if id(r) not in done]
            for request in finished:
                self._free_request(request)
        return finished

    def _free_request(self, request: Request) -> None:
        self.kv_cache_manager.free(request)
        del self.requests[request.request_id]
        self.finished_req_ids.add(request.request_id)

    def finish_requests(self, request_ids, status: RequestStatus) -> list[Request]:
        """Finish requests from outside (abort). Unknown or already finished ids are
        ignored, as vllm/v1/core/sched/scheduler.py:1779@0decac0 (Scheduler.finish_requests)."""
        if not RequestStatus.is_finished(status):
            raise ValueError(f"{status!r} is not a finished status")
        if isinstance(request_ids, str):
            request_ids = [request_ids]
        done = []
        for rid in dict.fromkeys(request_ids):
            request = self.requests.get(rid)
            if request is None or request.is_finished():
                continue
            if request.status == RequestStatus.RUNNING:
                self.running.remove(request)
            else:
                self.waiting.remove(request)
            request.status = status
            self._free_request(request)
            done.append(request)
        return done

    def has_unfinished_requests(self) -> bool:
        return bool(self.waiting or self.running)

    def get_num_unfinished_requests(self) -> int:
        return len(self.waiting) + len(self.running)
