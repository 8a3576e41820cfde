"""Lab 01-03: one engine step, wired by hand from the engine's parts. Your work: three functions.

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
    their tokens this step (only they get a token)."""
    raise NotImplementedError(
        "TODO 1: keep r in scheduler_output.scheduled_requests where Scheduler.needs_sample(r, "
        "num_scheduled_tokens[r.request_id]) — see README task 1"
    )


def execute_model(model: ToyModel, rows: list[Request]) -> np.ndarray:
    """Logits ``[len(rows), vocab]``: row ``i`` belongs to ``rows[i]``, computed from its
    last token at position ``num_tokens - 1``."""
    raise NotImplementedError(
        "TODO 2: model.forward(last token of each row, position num_tokens - 1 of each row), "
        "both as int64 arrays in row order — see README task 2"
    )


def engine_step(
    scheduler: Scheduler,
    model: ToyModel,
    sampler: Sampler,
    generators: dict[str, np.random.Generator],
) -> tuple[dict[str, int], list[Request]]:
    """One step. Returns ``(sampled token per request id, requests that finished)``."""
    raise NotImplementedError(
        "TODO 3: schedule(); rows_to_sample; execute_model; sampler.sample(row, params, generators[rid]) "
        "per row; update_from_output(output, sampled); drop finished generators — see README task 3"
    )
