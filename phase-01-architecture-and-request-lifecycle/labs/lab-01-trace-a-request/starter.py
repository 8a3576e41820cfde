"""Lab 01-01: drive the engine one step at a time and photograph a request. Your work: three functions.

After every ``EngineCore.step()`` we record the request's status and its two counters.
A request that finished in the step has already left ``scheduler.running`` (the update
stage reaps it), so it is read from the step's ``finished`` list instead; upstream hands
finished requests back the same way, in the ``EngineCoreOutputs`` that
vllm/v1/engine/core.py:453@0decac0 ("engine_core_outputs = self.scheduler.update_from_output(")
returns.
"""
from __future__ import annotations

from typing import NamedTuple

from mini_vllm import ByteTokenizer, EngineConfig, EngineCore, Request, SamplingParams

REQUEST_ID = "req-0"


class Event(NamedTuple):
    """One photograph of one request, taken after a step."""

    request_id: str
    status: str
    num_computed_tokens: int
    num_tokens: int


def make_request(prompt: str, max_tokens: int) -> Request:
    """Request ``REQUEST_ID`` for ``prompt`` (ByteTokenizer ids), greedy, EOS ignored,
    ``max_tokens`` output tokens, with the tokenizer's EOS id."""
    raise NotImplementedError(
        "TODO 1: encode with ByteTokenizer, SamplingParams(temperature=0.0, max_tokens=..., ignore_eos=True), "
        "Request(REQUEST_ID, ids, params, eos_token_id=...) — see README task 1"
    )


def snapshot(request: Request) -> Event:
    """The request's status name and its two counters, right now."""
    raise NotImplementedError("TODO 2: build an Event from request_id, status.name and the two counters — see README task 2")


def trace_request(prompt: str, max_tokens: int = 4, **engine_kwargs) -> list[Event]:
    """Run one request to completion, one event per step (running first, then finished)."""
    raise NotImplementedError(
        "TODO 3: EngineCore(EngineConfig.create(**engine_kwargs)), add the request, then step until done; after each "
        "step snapshot scheduler.running AND the step's finished list — see README task 3"
    )
