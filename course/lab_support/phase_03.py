"""Scaffolding phase 03's labs hand the learner, written once.

- ``run_trace``: lab-01's fake-model driver, the protocol the golden traces were recorded
  with (mini_vllm/testdata/README.md);
- ``make_step_scheduler``: lab-01's bridge from a ``schedule_step`` function to a class the
  engine's ``scheduler_cls`` seam accepts;
- ``plot_gaps``: lab-05's figure.

Each lab passes its own functions in, so ``starter.py`` and ``solution.py`` run the same
scaffolding on whichever implementation they hold.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mini_vllm import KVCacheManager, Request, RequestStatus, SamplingParams, SchedulerConfig, check_stop
from mini_vllm.scheduler import Scheduler as EngineScheduler
from mini_vllm.scheduler import SchedulerOutput

StepFn = Callable[[list, deque, KVCacheManager, SchedulerConfig], dict]


@dataclass
class Trace:
    """One run of ``run_trace``: per step, who ran and who finished; then the outputs."""

    steps: list[dict] = field(default_factory=list)
    outputs: dict[str, list[int]] = field(default_factory=dict)


def run_trace(
    schedule_step: StepFn,
    prompts: dict[str, list[int]],
    max_tokens: int,
    config: SchedulerConfig,
    block_size: int = 16,
    num_blocks: int = 1024,
    enable_prefix_caching: bool = False,
    arrivals: dict[str, int] | None = None,
) -> Trace:
    """Drive ``schedule_step`` to completion with a fake model.

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
            samples = EngineScheduler.needs_sample(request, n)
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


def make_step_scheduler(schedule_step: StepFn) -> type[EngineScheduler]:
    """The engine's scheduler with its decision made by ``schedule_step``.

    ``schedule_step`` decides; ``schedule`` only reports the decision in the form the
    engine's model runner reads (the engine's ``Scheduler._record``): which requests are
    new, each one's ``num_computed_tokens`` before the step, its block table and the blocks
    added this step. There is no preemption: a workload that runs out of KV blocks stalls
    instead of evicting (lab-04 adds the eviction).
    """

    class StepScheduler(EngineScheduler):
        def schedule(self) -> SchedulerOutput:
            out = SchedulerOutput(finished_req_ids=self.finished_req_ids)
            self.finished_req_ids = set()
            kv = self.kv_cache_manager
            held = {r.request_id: len(kv.get_blocks(r.request_id)) for r in self.running}
            was_waiting = {r.request_id: r.status for r in self.waiting}
            for rid, num_new_tokens in schedule_step(self.running, self.waiting, kv, self.config).items():
                request = self.requests[rid]
                if was_waiting.get(rid) == RequestStatus.WAITING:
                    out.scheduled_new_req_ids.append(rid)
                    request.num_cached_tokens = request.num_computed_tokens
                elif rid in was_waiting:
                    out.scheduled_resumed_req_ids.append(rid)
                self._record(out, request, num_new_tokens, kv.get_blocks(rid)[held.get(rid, 0):])
            return out

    StepScheduler.__doc__ = f"``mini_vllm.Scheduler`` deciding each step with ``{schedule_step.__module__}.schedule_step``."
    return StepScheduler


def plot_gaps(profiles: dict[str, list[int]], path: str | Path) -> Path:
    """Draw one line per profile (token index vs step tokens) into a PNG.

    matplotlib is imported here, not at module level, so the labs run without it.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    fig = Figure(figsize=(7, 3.6), dpi=100)
    ax = fig.add_subplot()
    for label, gaps in profiles.items():
        ax.plot(range(2, len(gaps) + 2), gaps, marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("A's output token")
    ax.set_ylabel("tokens in the step that produced it")
    ax.set_title("A decodes while B's 256-token prompt arrives")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path
