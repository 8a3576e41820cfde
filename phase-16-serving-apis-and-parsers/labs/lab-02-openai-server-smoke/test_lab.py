"""Lab 16-02 spec: read a server's answers as an OpenAI client must, and trace them to their source.

CPU: the readers on exact, hand-written SSE streams and error bodies; the source trace
against the pinned upstream tree; and the whole smoke against ``python -m mini_vllm
serve`` (needs the ``serve`` extra). GPU (``gpu`` marker): the same smoke against ``vllm
serve`` on the root conftest's tiny local Llama, run by the course lead on a GPU box.
"""
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

UPSTREAM = Path(__file__).resolve().parents[3] / "upstream"
SERVE_MISSING = [m for m in ("fastapi", "uvicorn", "openai", "httpx") if importlib.util.find_spec(m) is None]


def chunk(delta, finish=None, cid="chatcmpl-1"):
    return {"id": cid, "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]}


GOOD_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Bon"}),
    chunk({"content": "jour"}),
    chunk({}, "stop"),
]
TOOL_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Sure. "}),
    chunk({"tool_calls": [{"index": 0, "id": "call-0", "type": "function", "function": {"name": "get_weather"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chunk({}, "tool_calls"),
]


def sse(chunks, done=True):
    lines = []
    for c in chunks:
        lines += [f"data: {json.dumps(c)}", ""]
    return lines + (["data: [DONE]", ""] if done else [])


# -- Task 1: SSE ------------------------------------------------------------------------

def test_parse_sse_returns_the_payloads_in_order(lab):
    assert lab.parse_sse(sse(GOOD_STREAM)) == GOOD_STREAM


def test_a_stream_without_done_is_an_error(lab):
    with pytest.raises(ValueError, match="DONE"):
        lab.parse_sse(sse(GOOD_STREAM, done=False))


@pytest.mark.parametrize("lines", [["event: ping", "data: [DONE]"], ['data: {"a": 1}', "data: [DONE]", 'data: {"b": 2}']],
                         ids=["not-a-data-line", "data-after-done"])
def test_malformed_sse_is_an_error(lab, lines):
    with pytest.raises(ValueError):
        lab.parse_sse(lines)


def test_parse_sse_skips_blank_lines_only(lab):
    assert lab.parse_sse(["", "  ", 'data: {"x": 1}', "", "data: [DONE]"]) == [{"x": 1}]


# -- Task 2: what a client assembles ------------------------------------------------------------

def test_summary_of_a_plain_stream(lab):
    s = lab.summarize_chat_stream(GOOD_STREAM)
    assert (s.role, s.content, s.finish_reason, s.tool_calls, s.num_chunks, s.problems) == \
        ("assistant", "Bonjour", "stop", [], 4, [])


def test_summary_assembles_a_tool_call_from_its_deltas(lab):
    s = lab.summarize_chat_stream(TOOL_STREAM)
    assert s.tool_calls == [{"id": "call-0", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
    assert (s.content, s.finish_reason, s.problems) == ("Sure. ", "tool_calls", [])


def test_usage_chunk_without_choices_is_not_a_choice(lab):
    usage = {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    s = lab.summarize_chat_stream(GOOD_STREAM + [usage])
    assert s.problems == [] and s.num_chunks == 4


@pytest.mark.parametrize("chunks, fragment", [
    (GOOD_STREAM[1:], "role"),
    (GOOD_STREAM[:-1], "0 chunks carry a finish_reason"),
    (GOOD_STREAM[:-1] + [chunk({}, "stop"), chunk({}, "stop")], "2 chunks carry a finish_reason"),
    (GOOD_STREAM + [chunk({"content": "late"})], "after the finish_reason"),
    (GOOD_STREAM[:2] + [chunk({"content": "x"}, cid="chatcmpl-2")] + GOOD_STREAM[2:], "ids"),
    (GOOD_STREAM[:1] + [chunk({"role": "assistant", "content": "again"})] + GOOD_STREAM[1:], "repeats the role"),
    (TOOL_STREAM[:2] + TOOL_STREAM[3:], "without an id and a name"),
    (TOOL_STREAM[:3] + TOOL_STREAM[2:], "twice"),
], ids=["no-role", "no-finish", "two-finishes", "chunk-after-finish", "two-ids", "role-twice",
        "call-without-name", "name-twice"])
def test_summary_names_each_broken_promise(lab, chunks, fragment):
    problems = lab.summarize_chat_stream(chunks).problems
    assert any(fragment in p for p in problems), f"expected a problem mentioning {fragment!r}, got {problems}"


# -- Task 3: error bodies --------------------------------------------------------------------------

ERR = {"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "param": "model", "code": 404}}


def test_a_good_error_body_has_no_problems(lab):
    assert lab.check_error(404, ERR, 404, "model") == []
    assert lab.check_error(404, ERR, 404) == [], "param None: not checked"


@pytest.mark.parametrize("status, body, want, param, fragment", [
    (400, ERR, 404, "model", "status"),
    (404, {"detail": "Not Found"}, 404, None, "no error object"),
    (404, {"error": {"message": "m", "type": "t", "code": 404}}, 404, None, "param"),
    (404, {"error": dict(ERR["error"], code=400)}, 404, None, "code"),
    (404, {"error": dict(ERR["error"], message="")}, 404, None, "message"),
    (404, ERR, 404, "temperature", "param"),
], ids=["wrong-status", "fastapi-default", "missing-key", "code-mismatch", "empty-message", "wrong-param"])
def test_check_error_names_what_is_wrong(lab, status, body, want, param, fragment):
    problems = lab.check_error(status, body, want, param)
    assert any(fragment in p for p in problems), f"expected a problem mentioning {fragment!r}, got {problems}"


# -- Task 4: the deliberate failures -----------------------------------------------------------------

def test_bad_requests_cover_model_temperature_and_length(lab):
    bad = {b.name: b for b in lab.bad_requests("tiny", 512)}
    assert set(bad) == {"unknown-model", "negative-temperature", "max-tokens-too-large"}
    assert (bad["unknown-model"].status, bad["unknown-model"].param) == (404, "model")
    assert bad["unknown-model"].body["model"] != "tiny"
    assert (bad["negative-temperature"].status, bad["negative-temperature"].param) == (400, "temperature")
    assert bad["negative-temperature"].body["temperature"] < 0
    assert bad["max-tokens-too-large"].status == 400 and bad["max-tokens-too-large"].body["max_tokens"] >= 512
    assert all(b.body["messages"] for b in bad.values()), "each request is valid except for its one fault"


# -- Task 5: the source trace -----------------------------------------------------------------------

WANT_PATHS = {
    "route": "vllm/entrypoints/openai/chat_completion/api_router.py",
    "unknown_model_404": "vllm/entrypoints/openai/engine/serving.py",
    "negative_temperature_400": "vllm/sampling_params.py",
    "chat_template": "vllm/renderers/hf.py",
    "engine_call": "vllm/entrypoints/openai/chat_completion/serving.py",
    "role_chunk": "vllm/entrypoints/openai/chat_completion/serving.py",
    "text_delta": "vllm/v1/engine/detokenizer.py",
    "tool_call_delta": "vllm/tool_parsers/hermes_tool_parser.py",
    "finish_reason_tool_calls": "vllm/entrypoints/openai/chat_completion/serving.py",
    "done_sentinel": "vllm/entrypoints/openai/chat_completion/serving.py",
    "disconnect_abort": "vllm/v1/engine/async_llm.py",
}


def test_each_artifact_is_traced_to_its_file(lab):
    trace = lab.trace_artifacts()
    assert set(trace) == set(WANT_PATHS)
    wrong = {a: trace[a][0] for a in WANT_PATHS if trace[a][0] != WANT_PATHS[a]}
    assert not wrong, f"look again (paths at the pin, relative to upstream/): {wrong}"


@pytest.mark.skipif(not (UPSTREAM / "vllm").is_dir(), reason="upstream/ is not checked out: python tools/fetch_upstream.py upstream")
def test_each_snippet_is_real_code_at_the_pin(lab):
    for artifact, (path, snippet) in lab.trace_artifacts().items():
        assert len(snippet) >= 12, f"{artifact}: quote at least 12 characters of the line"
        assert snippet in (UPSTREAM / path).read_text(), f"{artifact}: {snippet!r} is not in {path}"


# -- the smoke, against the mini server (CPU) ------------------------------------------------------------

@pytest.mark.skipif(bool(SERVE_MISSING), reason=f"needs {', '.join(SERVE_MISSING)}: pip install -e '.[serve]'")
def test_smoke_against_mini_vllm_serve(lab):
    from mini_vllm.entrypoints.testing import GREETING, MAX_MODEL_LEN, NUM_BLOCKS, RunningServer

    srv = RunningServer(delay_s=0.002, enable_auto_tool_choice=True, tool_call_parser="hermes")
    try:
        report = lab.run_smoke(srv.base_url, "tiny", MAX_MODEL_LEN)
        srv.wait_idle()
    finally:
        srv.close()
    stream = report["stream"]
    assert report["stream_content_type"].startswith("text/event-stream")
    assert (stream.problems, stream.role, stream.content, stream.finish_reason) == ([], "assistant", GREETING, "stop")
    assert report["tool_status"] == 200 and report["tool_choice"]["finish_reason"] == "tool_calls"
    assert report["tool_stream"].problems == [] and report["tool_stream"].tool_calls[0]["name"] == "get_weather"
    assert report["errors"] == {"unknown-model": [], "negative-temperature": [], "max-tokens-too-large": []}
    aborted = [o for o in srv.engine.finished_outputs.values() if o.finish_reason == "abort"]
    assert len(aborted) == 1 and len(aborted[0].output_token_ids) < MAX_MODEL_LEN // 2, "the hang-up aborted"
    assert srv.engine.engine_core.kv_cache_manager.num_free_blocks == NUM_BLOCKS - 1, "every block came back"


# -- the smoke, against vllm serve (GPU) ------------------------------------------------------------------

SIMPLE_JINJA = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.gpu
def test_smoke_against_vllm_serve(lab, gpu_device, tiny_llama_dir, tmp_path, figures):
    import httpx

    from course.gpu_fixtures import VLLM_ENV

    template = tmp_path / "template.jinja"
    template.write_text(SIMPLE_JINJA)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    max_model_len = 2048
    cmd = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", tiny_llama_dir, "--port", str(port),
           "--host", "127.0.0.1", "--served-model-name", "tiny", "--max-model-len", str(max_model_len),
           "--gpu-memory-utilization", "0.3", "--chat-template", str(template),
           "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **VLLM_ENV})
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while True:
            assert proc.poll() is None, f"vllm serve exited: {log.read_text()[-3000:]}"
            assert time.monotonic() - t0 < 600, "vllm serve did not come up in 600 s"
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        figures("phase16_vllm_serve_startup_s", round(time.monotonic() - t0, 1))
        report = lab.run_smoke(base + "/v1", "tiny", max_model_len, expect_tool_call=False)
        stream = report["stream"]
        assert stream.problems == [] and stream.role == "assistant" and stream.finish_reason in ("stop", "length")
        assert report["tool_status"] == 200, "a request with tools is accepted (a random model will not call one)"
        assert report["errors"]["unknown-model"] == [] and report["errors"]["negative-temperature"] == []
        assert report["errors"]["max-tokens-too-large"] == []
        deadline = time.monotonic() + 30
        while True:
            metrics = httpx.get(base + "/metrics", timeout=5).text
            if _metric(metrics, "vllm:num_requests_running") == 0:
                break
            assert time.monotonic() < deadline, "a request is still running 30 s after the client hung up"
            time.sleep(0.2)
        figures("phase16_vllm_serve_abort_count", _metric(metrics, "vllm:request_success_total", finished_reason="abort"))
        figures("phase16_vllm_serve_idle_after_hangup_s", round(time.monotonic() - report["hangup_at"], 2))
        assert re.search(r"POST /v1/chat/completions HTTP/1.1\" 200", log.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
