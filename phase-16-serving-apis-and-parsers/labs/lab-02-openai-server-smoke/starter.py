"""Lab 16-02: the OpenAI server end to end, smoke-tested with the official client. Your work: TODOs 1-5.

The same smoke runs against two servers: ``python -m mini_vllm serve`` on a CPU, and
``vllm serve`` on a GPU box (the lab's ``gpu`` test). It streams a chat completion, asks
for a tool call, sends deliberately bad requests, and hangs up mid-stream. Your work is
the client-side reading of what comes back (SSE lines, stream chunks, error bodies) and
the source trace: which upstream file produces each artifact of a response.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

DONE = "data: [DONE]"
ERROR_KEYS = {"message", "type", "param", "code"}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@dataclass
class StreamSummary:
    """What a client assembles from a streamed chat completion."""

    role: str | None = None
    content: str = ""
    finish_reason: str | None = None
    tool_calls: list[dict] = field(default_factory=list)  # {"id", "name", "arguments"} per index
    num_chunks: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class BadRequest:
    name: str
    body: dict
    status: int
    param: str | None  # None: the test checks the status and the shape only


def parse_sse(lines) -> list[dict]:
    """The JSON payloads of a Server-Sent Events body, in order.

    Blank lines separate events and are skipped; every other line must be ``data: <json>``;
    the stream must end with ``data: [DONE]``, after which nothing may follow. A violation
    raises ValueError naming the line."""
    raise NotImplementedError("TODO 1: the payloads of an SSE body, checked (README task 1)")


def summarize_chat_stream(chunks: list[dict]) -> StreamSummary:
    """Assemble streamed ``chat.completion.chunk`` dicts as a client does, and record every
    broken promise of the protocol in ``problems``: the first chunk carries the role; every
    chunk has the same id; exactly one chunk has a finish_reason and no choice follows it;
    a tool call's first delta has its id and name, later ones only argument text."""
    raise NotImplementedError("TODO 2: assemble a stream and list its broken promises (README task 2)")


def check_error(status: int, body, want_status: int, want_param: str | None = None) -> list[str]:
    """Problems with an error response (empty list: it is what an OpenAI client expects):
    the status, a body ``{"error": {"message", "type", "param", "code"}}`` with
    ``code == status``, a non-empty message, and ``param`` when one is expected."""
    raise NotImplementedError("TODO 3: what is wrong with an error response (README task 3)")


def bad_requests(model: str, max_model_len: int) -> list[BadRequest]:
    """The deliberate failures, each valid JSON that the server must refuse before the
    engine sees it: an unknown model (404, param "model"), a negative temperature (400,
    "temperature"), and max_tokens equal to the whole context window (400; the param
    differs between servers: vLLM blames "input_tokens", mini_vllm "max_tokens")."""
    raise NotImplementedError("TODO 4: three requests the server must refuse (README task 4)")


def trace_artifacts() -> dict[str, tuple[str, str]]:
    """For each artifact of a response, the upstream file (at the pin) that produces it and
    an exact snippet of the line that does: ``{artifact: (path, snippet)}``."""
    raise NotImplementedError("TODO 5: the upstream file and line behind each artifact (README task 5)")


def run_smoke(base_url: str, model: str, max_model_len: int, expect_tool_call: bool = True,
              endless_prompt: str = "Talk forever: count from one to a thousand in words.") -> dict:
    """Given: the smoke itself, over real HTTP with the ``openai`` and ``httpx`` clients.
    Returns a report; the caller asserts on it. ``expect_tool_call`` is False for a model
    that cannot be made to call a tool (a random-weight model)."""
    import httpx
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    report: dict = {}
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 24,
            "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=120) as r:
        report["stream_content_type"] = r.headers.get("content-type", "")
        stream = summarize_chat_stream(parse_sse(r.iter_lines()))
    report["stream"] = stream
    tool_body = {"model": model, "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                 "tools": [WEATHER_TOOL], "temperature": 0, "max_tokens": 160}
    r = httpx.post(f"{base_url}/chat/completions", json=tool_body, timeout=120)
    report["tool_status"] = r.status_code
    report["tool_choice"] = r.json()["choices"][0]
    if expect_tool_call:
        with httpx.stream("POST", f"{base_url}/chat/completions", json=dict(tool_body, stream=True),
                          timeout=120) as r:
            report["tool_stream"] = summarize_chat_stream(parse_sse(r.iter_lines()))
    report["errors"] = {}
    for bad in bad_requests(model, max_model_len):
        r = httpx.post(f"{base_url}/chat/completions", json=bad.body, timeout=60)
        report["errors"][bad.name] = check_error(r.status_code, r.json(), bad.status, bad.param)
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": endless_prompt}],
                                            max_tokens=max_model_len // 2, temperature=0, stream=True,
                                            extra_body={"ignore_eos": True})
    received = 0
    for _ in stream:
        received += 1
        if received == 4:
            break
    stream.close()
    report["chunks_before_hangup"] = received
    report["hangup_at"] = time.monotonic()
    return report
