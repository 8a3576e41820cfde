"""The OpenAI-compatible server, driven by the official ``openai`` client over real HTTP.

The server runs in a thread on 127.0.0.1 (a free port) in front of an ``LLMEngine`` whose
model is ``ScriptedModel``: it reads each sequence back out of its paged cache and answers
with a fixed script after the chat template's generation prompt, so the tests know every
byte the server must return (a greeting with an emoji, a Hermes tool call, or an endless
reply for the disconnect test). Needs the ``serve`` extra; skipped with a reason without it.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys

import pytest

from mini_vllm.entrypoints.testing import GREETING, NUM_BLOCKS, RunningServer

MISSING = [m for m in ("fastapi", "uvicorn", "openai", "httpx") if importlib.util.find_spec(m) is None]
needs_serve = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)}: pip install -e '.[serve]'")

@pytest.fixture(scope="module")
def srv():
    if MISSING:
        pytest.skip(f"needs {', '.join(MISSING)}: pip install -e '.[serve]'")
    s = RunningServer(delay_s=0.002, enable_auto_tool_choice=True, tool_call_parser="hermes")
    yield s
    s.close()


USER = [{"role": "user", "content": "Say hello."}]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city"]}}}


def test_import_mini_vllm_does_not_import_fastapi():
    code = "import sys, mini_vllm, mini_vllm.entrypoints.tool_parser; assert 'fastapi' not in sys.modules, 'fastapi'"
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_serve
def test_models_lists_the_served_model(srv):
    models = srv.client().models.list()
    assert [m.id for m in models.data] == ["tiny"]


@needs_serve
def test_completion_returns_the_script_and_usage(srv):
    prompt = "Q: say hello\n<|assistant|>\n"
    r = srv.client().completions.create(model="tiny", prompt=prompt, max_tokens=64, temperature=0)
    assert r.choices[0].text == GREETING
    assert r.choices[0].finish_reason == "stop", "the script ends with EOS"
    n_out = len(GREETING.encode()) + 1  # the EOS token counts as output, not as text
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (len(prompt.encode()), n_out)


@needs_serve
def test_completion_length_cap_reports_length(srv):
    r = srv.client().completions.create(model="tiny", prompt="<|assistant|>\n", max_tokens=3, temperature=0)
    assert (r.choices[0].text, r.choices[0].finish_reason) == (GREETING[:3], "length")


@needs_serve
def test_chat_completion_renders_the_template(srv):
    r = srv.client().chat.completions.create(model="tiny", messages=USER, temperature=0)
    msg = r.choices[0].message
    assert (msg.role, msg.content, msg.tool_calls) == ("assistant", GREETING, None)
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == len("<|user|>\nSay hello.\n<|assistant|>\n".encode())


@needs_serve
def test_streamed_chat_deltas_add_up_to_the_answer_without_broken_characters(srv):
    chunks = list(srv.client().chat.completions.create(model="tiny", messages=USER, temperature=0, stream=True))
    first, last = chunks[0].choices[0], chunks[-1].choices[0]
    assert (first.delta.role, first.delta.content) == ("assistant", ""), "the first chunk carries the role"
    assert last.finish_reason == "stop" and all(c.choices[0].finish_reason is None for c in chunks[:-1])
    pieces = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert "".join(pieces) == GREETING
    assert "\ufffd" not in "".join(pieces) and "\U0001F680" in pieces, "the rocket arrives whole, in one delta"
    assert len({c.id for c in chunks}) == 1


@needs_serve
def test_streamed_completion_is_sse_ending_with_done(srv):
    import httpx

    body = {"model": "tiny", "prompt": "<|assistant|>\n", "max_tokens": 64, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", srv.base_url + "/completions", json=body, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    data = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert "".join(d["choices"][0]["text"] for d in data if d["choices"]) == GREETING
    assert data[-1]["choices"] == [] and data[-1]["usage"]["completion_tokens"] == len(GREETING.encode()) + 1
    assert data[-2]["choices"][0]["finish_reason"] == "stop"


@needs_serve
def test_tool_call_comes_back_structured(srv):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = srv.client().chat.completions.create(model="tiny", messages=messages, tools=[WEATHER_TOOL], temperature=0)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking. ", "content is the text before the first <tool_call>"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("chatcmpl-tool-")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}, "arguments is a JSON string"


@needs_serve
def test_streamed_tool_call_assembles_from_deltas(srv):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    stream = srv.client().chat.completions.create(model="tiny", messages=messages, tools=[WEATHER_TOOL],
                                                  temperature=0, stream=True)
    content, names, args, finish = "", {}, {}, None
    for chunk in stream:
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for tc in delta.tool_calls or ():
            if tc.function and tc.function.name:
                names[tc.index] = tc.function.name
            args[tc.index] = args.get(tc.index, "") + ((tc.function and tc.function.arguments) or "")
        finish = chunk.choices[0].finish_reason or finish
    assert content == "Checking. " and "<tool" not in content, "no half tag leaks into the content"
    assert names == {0: "get_weather"} and json.loads(args[0]) == {"city": "Paris", "unit": "c"}
    assert finish == "tool_calls"


@needs_serve
@pytest.mark.parametrize("kwargs, status, param", [
    (dict(model="gpt-4"), 404, "model"),
    (dict(temperature=-1.0), 400, "temperature"),
    (dict(messages=[]), 400, "messages"),
    (dict(max_tokens=100_000), 400, "max_tokens"),
    (dict(top_p=0.0), 400, "top_p"),
    (dict(messages=[{"role": "wizard", "content": "hi"}]), 400, "messages"),
    (dict(tools=[WEATHER_TOOL], tool_choice="required"), 400, "tool_choice"),
], ids=["unknown-model", "temperature", "empty-messages", "max-tokens-too-large", "top-p", "bad-role",
        "tool-choice-required"])
def test_bad_requests_get_openai_shaped_errors(srv, kwargs, status, param):
    import openai

    request = dict(model="tiny", messages=USER) | kwargs
    with pytest.raises(openai.APIStatusError) as info:
        srv.client().chat.completions.create(**request)
    err = info.value
    assert err.status_code == status
    assert set(err.body) == {"message", "type", "param", "code"}, "OpenAI's error object: message, type, param, code"
    assert err.body["param"] == param and err.body["code"] == status
    assert err.body["type"] == ("NotFoundError" if status == 404 else "BadRequestError")


@needs_serve
def test_invalid_json_body_is_a_400(srv):
    import httpx

    r = httpx.post(srv.base_url + "/chat/completions", content=b"{not json", timeout=10,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequestError"


@needs_serve
def test_client_disconnect_mid_stream_aborts_and_frees_every_block(srv):
    free_before = srv.engine.engine_core.kv_cache_manager.num_free_blocks
    client = srv.client()
    stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "talk forever"}],
                                            max_tokens=400, temperature=0, stream=True)
    rid, pieces = None, []
    for chunk in stream:
        rid = chunk.id
        pieces.append(chunk.choices[0].delta.content)
        if len(pieces) == 4:
            break
    assert rid in srv.engine.scheduler.requests, "the request is still generating when the client leaves"
    stream.close()  # the client hangs up mid-stream
    srv.wait_idle()
    out = srv.engine.finished_outputs[rid]
    assert out.finish_reason == "abort", "a vanished client's request is aborted, not run to max_tokens"
    assert len(out.output_token_ids) < 400
    assert srv.engine.engine_core.kv_cache_manager.num_free_blocks == free_before == NUM_BLOCKS - 1, \
        "every KV block is back in the free queue (block 0 is the null block)"


@needs_serve
def test_concurrent_requests_share_engine_steps(srv):
    import openai

    async def main():
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        calls = [client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": f"hi {i}"}],
                                                temperature=0) for i in range(4)]
        return await asyncio.gather(*calls)

    first_step = srv.engine.engine_core.step_count
    results = asyncio.run(main())
    assert [r.choices[0].message.content for r in results] == [GREETING] * 4
    batched = [s for s in srv.engine.step_stats if s.step >= first_step and len(s.num_scheduled_tokens) > 1]
    assert batched, "the four requests ran in the same engine steps (one loop, continuous batching)"


@needs_serve
def test_prompt_longer_than_the_context_is_a_400_naming_the_prompt(srv):
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        srv.client().completions.create(model="tiny", prompt="x" * 600, max_tokens=1)
    assert info.value.body["param"] == "prompt"


@needs_serve
def test_stop_token_ids_of_the_wrong_type_are_a_400(srv):
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        srv.client().chat.completions.create(model="tiny", messages=USER, extra_body={"stop_token_ids": 7})
    assert info.value.body["param"] == "stop_token_ids"


@needs_serve
def test_a_stream_whose_body_never_starts_still_aborts(srv):
    """The watcher can win before the body task iterates the events: closing must still abort."""
    from mini_vllm.sampler import SamplingParams

    server = srv.app.state.server
    rid = "never-started"

    async def admit_and_close():
        response = server._stream(rid, [1, 2, 3], SamplingParams(max_tokens=50, ignore_eos=True),
                                  detok=None, head={}, body={}, chat=False)
        assert rid in server.async_engine._queues
        await response.events.aclose()
        response.on_close()

    import asyncio as aio

    future = aio.run_coroutine_threadsafe(admit_and_close(), server.async_engine._task.get_loop())
    future.result(timeout=10)
    srv.wait_idle()
    assert srv.engine.finished_outputs[rid].finish_reason == "abort"
