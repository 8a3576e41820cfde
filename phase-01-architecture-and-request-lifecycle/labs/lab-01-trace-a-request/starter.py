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
    """A request whose length is known in advance: greedy, and EOS ignored, so it runs
    exactly ``max_tokens`` output tokens. Upstream, ``LLM.generate`` does this step in the
    front-end process (tokenize, then an ``EngineCoreRequest``), and the engine core
    turns it into a ``Request``."""
    raise NotImplementedError("TODO 1: build a fixed-length greedy request (README task 1)")


def snapshot(request: Request) -> Event:
    """The request's status name and its two counters, right now."""
    raise NotImplementedError("TODO 2: photograph a request (README task 2)")


def trace_request(prompt: str, max_tokens: int = 4, **engine_kwargs) -> list[Event]:
    """Run one request to completion, one event per step (running first, then finished)."""
    raise NotImplementedError("TODO 3: run one request to the end, one event per step (README task 3)")


if __name__ == "__main__":
    print("step  status            computed  tokens")
    for i, e in enumerate(trace_request("hello", max_tokens=4), 1):
        print(f"{i:>4}  {e.status:<16}  {e.num_computed_tokens:>8}  {e.num_tokens:>6}")
