"""Lab 01-03 reference: one engine step, wired by hand from the engine's parts.

schedule -> pick the rows that sample -> execute the model on them -> sample each row
with its request's own generator -> update_from_output. This is
``mini_vllm.EngineCore.step`` for ``model="toy"`` (``ToyModel`` needs only each row's
last token and position), and the same four stages as
vllm/v1/engine/core.py:428@0decac0 (EngineCore.step).
"""
from __future__ import annotations

import numpy as np

from mini_vllm import Request, Sampler, Scheduler
from mini_vllm.model import ToyModel
from mini_vllm.scheduler import SchedulerOutput


def rows_to_sample(scheduler_output: SchedulerOutput) -> list[Request]:
    """Scheduled requests, in scheduled order, whose computed tokens catch up with all
    their tokens this step. Only they have logits worth sampling: a prefill chunk that
    stops short has not read its whole prompt yet. (The engine's own rule is
    ``Scheduler.needs_sample``.)

    Upstream samples every row anyway and throws the partial ones away
    (vllm/v1/worker/gpu_model_runner.py:2006@0decac0 ("self.discard_request_mask.np[:num_reqs] = (")).
    """
    return [
        r for r in scheduler_output.scheduled_requests
        if r.num_computed_tokens + scheduler_output.num_scheduled_tokens[r.request_id] == r.num_tokens
    ]


def execute_model(model: ToyModel, rows: list[Request]) -> np.ndarray:
    """Logits ``[len(rows), vocab]``: row ``i`` belongs to ``rows[i]``, computed from its
    last token at position ``num_tokens - 1``."""
    last_tokens = np.array([r.all_token_ids[-1] for r in rows], dtype=np.int64)
    positions = np.array([r.num_tokens - 1 for r in rows], dtype=np.int64)
    n = len(rows)
    # The engine's model contract with one query token per row (query_start_loc 0..n);
    # the toy model keeps no KV cache, so slots and block tables are placeholders.
    return model.forward(last_tokens, positions, np.zeros(n, dtype=np.int64), [[0]] * n,
                         np.arange(n + 1), positions + 1, model.make_kv_caches(0, 1))


def engine_step(
    scheduler: Scheduler,
    model: ToyModel,
    sampler: Sampler,
    generators: dict[str, np.random.Generator],
) -> tuple[dict[str, int], list[Request]]:
    """One step. Returns ``(sampled token per request id, requests that finished)``."""
    scheduler_output = scheduler.schedule()
    rows = rows_to_sample(scheduler_output)
    sampled: dict[str, int] = {}
    if rows:
        logits = execute_model(model, rows)
        for request, row in zip(rows, logits):
            rid = request.request_id
            sampled[rid] = sampler.sample(row, request.sampling_params, generators[rid])
    finished = scheduler.update_from_output(scheduler_output, sampled)
    for request in finished:
        generators.pop(request.request_id, None)
    return sampled, finished
