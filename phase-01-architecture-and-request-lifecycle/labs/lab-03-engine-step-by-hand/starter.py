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
    their tokens this step. Only they have logits worth sampling: a prefill chunk that
    stops short has not read its whole prompt yet. (The engine's own rule is
    ``Scheduler.needs_sample``.)

    Upstream samples every row anyway and throws the partial ones away
    (vllm/v1/worker/gpu_model_runner.py:2006@0decac0 ("self.discard_request_mask.np[:num_reqs] = (")).
    """
    raise NotImplementedError("TODO 1: pick the requests that get a token this step (README task 1)")


def execute_model(model: ToyModel, rows: list[Request]) -> np.ndarray:
    """Logits ``[len(rows), vocab]``: row ``i`` belongs to ``rows[i]``, computed from its
    last token at position ``num_tokens - 1``."""
    raise NotImplementedError("TODO 2: one logits row per sampling request (README task 2)")


def engine_step(
    scheduler: Scheduler,
    model: ToyModel,
    sampler: Sampler,
    generators: dict[str, np.random.Generator],
) -> tuple[dict[str, int], list[Request]]:
    """One step. Returns ``(sampled token per request id, requests that finished)``."""
    raise NotImplementedError("TODO 3: one engine step from its parts (README task 3)")
