"""Lab 16-02: the OpenAI server end to end, smoke-tested with the official client (reference solution).

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
    events, done = [], False
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        if done:
            raise ValueError(f"line {n}: {line!r} after data: [DONE]")
        if line == DONE:
            done = True
            continue
        if not line.startswith("data: "):
            raise ValueError(f"line {n}: {line!r} is not a data: line")
        events.append(json.loads(line[len("data: "):]))
    if not done:
        raise ValueError("the stream ended without data: [DONE]")
    return events


def summarize_chat_stream(chunks: list[dict]) -> StreamSummary:
    """Assemble streamed ``chat.completion.chunk`` dicts as a client does, and record every
    broken promise of the protocol in ``problems``: the first chunk carries the role; every
    chunk has the same id; exactly one chunk has a finish_reason and no choice follows it;
    a tool call's first delta has its id and name, later ones only argument text."""
    s = StreamSummary()
    ids = {c.get("id") for c in chunks}
    if len(ids) > 1:
        s.problems.append(f"chunks carry {len(ids)} different ids")
    finished = 0
    calls: dict[int, dict] = {}
    for n, chunk in enumerate(chunks):
        for choice in chunk.get("choices", []):
            s.num_chunks += 1
            if finished:
                s.problems.append(f"chunk {n} comes after the finish_reason")
            delta = choice.get("delta") or {}
            if n == 0:
                s.role = delta.get("role")
            elif delta.get("role") is not None:
                s.problems.append(f"chunk {n} repeats the role")
            s.content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or ():
                fn = tc.get("function") or {}
                if tc["index"] not in calls:
                    if not (tc.get("id") and fn.get("name")):
                        s.problems.append(f"chunk {n}: tool call {tc['index']} starts without an id and a name")
                    calls[tc["index"]] = {"id": tc.get("id"), "name": fn.get("name"), "arguments": ""}
                elif tc.get("id") or fn.get("name"):
                    s.problems.append(f"chunk {n}: tool call {tc['index']} sends its id or name twice")
                calls[tc["index"]]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason") is not None:
                finished += 1
                s.finish_reason = choice["finish_reason"]
    if s.role != "assistant":
        s.problems.append(f"the first chunk's role is {s.role!r}, not 'assistant'")
    if finished != 1:
        s.problems.append(f"{finished} chunks carry a finish_reason (want exactly 1)")
    s.tool_calls = [calls[i] for i in sorted(calls)]
    return s


def check_error(status: int, body, want_status: int, want_param: str | None = None) -> list[str]:
    """Problems with an error response (empty list: it is what an OpenAI client expects):
    the status, a body ``{"error": {"message", "type", "param", "code"}}`` with
    ``code == status``, a non-empty message, and ``param`` when one is expected."""
    problems = []
    if status != want_status:
        problems.append(f"status {status}, want {want_status}")
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return problems + [f"body has no error object: {body!r}"]
    if set(error) < ERROR_KEYS:
        problems.append(f"error lacks {sorted(ERROR_KEYS - set(error))}")
    if error.get("code") != status:
        problems.append(f"error.code {error.get('code')!r} != status {status}")
    if not error.get("message"):
        problems.append("error.message is empty")
    if want_param is not None and error.get("param") != want_param:
        problems.append(f"error.param {error.get('param')!r}, want {want_param!r}")
    return problems


def bad_requests(model: str, max_model_len: int) -> list[BadRequest]:
    """The deliberate failures, each valid JSON that the server must refuse before the
    engine sees it: an unknown model (404, param "model"), a negative temperature (400,
    "temperature"), and max_tokens equal to the whole context window (400; the param
    differs between servers: vLLM blames "input_tokens", mini_vllm "max_tokens")."""
    user = [{"role": "user", "content": "hi"}]
    return [
        BadRequest("unknown-model", {"model": model + "-nope", "messages": user}, 404, "model"),
        BadRequest("negative-temperature", {"model": model, "messages": user, "temperature": -1.0}, 400,
                   "temperature"),
        BadRequest("max-tokens-too-large", {"model": model, "messages": user, "max_tokens": max_model_len}, 400,
                   None),
    ]


def trace_artifacts() -> dict[str, tuple[str, str]]:
    """For each artifact of a response, the upstream file (at the pin) that produces it and
    an exact snippet of the line that does: ``{artifact: (path, snippet)}``."""
    chat = "vllm/entrypoints/openai/chat_completion/serving.py"
    return {
        "route": ("vllm/entrypoints/openai/chat_completion/api_router.py", "async def create_chat_completion"),
        "unknown_model_404": ("vllm/entrypoints/openai/engine/serving.py", "does not exist."),
        "negative_temperature_400": ("vllm/sampling_params.py", "temperature must be non-negative"),
        "chat_template": ("vllm/renderers/hf.py", "def safe_apply_chat_template"),
        "engine_call": (chat, "self.engine_client.generate("),
        "role_chunk": (chat, "Send first response for each request.n"),
        "text_delta": ("vllm/v1/engine/detokenizer.py", "def decode_next"),
        "tool_call_delta": ("vllm/tool_parsers/hermes_tool_parser.py", "def extract_tool_calls_streaming"),
        "finish_reason_tool_calls": (chat, 'finish_reason_ = "tool_calls"'),
        "done_sentinel": (chat, 'yield "data: [DONE]\\n\\n"'),
        "disconnect_abort": ("vllm/v1/engine/async_llm.py", "except (asyncio.CancelledError, GeneratorExit):"),
    }


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
