"""An OpenAI-compatible HTTP server in front of ``LLMEngine``: ``python -m mini_vllm serve``.

Routes: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``
(streaming as Server-Sent Events or one JSON body), ``GET /health``. Needs the ``serve``
extra (``pip install -e '.[serve]'``: fastapi + uvicorn); ``import mini_vllm`` never
imports this module.

The layers, each mirroring a piece of vLLM 0.22.1:

- ``AsyncEngine`` is the one engine loop: an asyncio task that steps ``LLMEngine`` while
  any request is unfinished and sleeps otherwise. Requests join (``add_request``) and leave
  (``abort``) between steps; after each step every live request's queue receives its new
  token ids. Upstream splits this across processes: ``AsyncLLM.generate`` feeds a
  per-request queue that a background ``output_handler`` task fills from the EngineCore
  process (vllm/v1/engine/async_llm.py:656@0decac0 (output_handler)). Here the step runs on
  the event loop itself, which is fine for a numpy model that steps in milliseconds and is
  the reason upstream moved EngineCore out of the server process.
- ``AsyncEngine.generate`` aborts its request when the consumer stops early (the client
  disconnected, so Starlette cancelled the streaming body), as upstream does in
  vllm/v1/engine/async_llm.py:591@0decac0 ("except (asyncio.CancelledError, GeneratorExit):").
  The engine then frees the request's KV blocks at once.
- The handlers translate: JSON body -> validated ``SamplingParams`` and prompt ids (chat
  messages through the chat template), engine tokens -> text through
  ``IncrementalDetokenizer`` -> tool calls through ``Hermes2ProToolParser`` -> OpenAI
  response objects or ``data: {...}`` SSE chunks ending in ``data: [DONE]``.
- A bad request never reaches the engine: it gets an OpenAI-shaped error body
  ``{"error": {"message", "type", "param", "code"}}`` with status 400, or 404 for an unknown
  model, as upstream's ``_check_model`` answers
  (vllm/entrypoints/openai/engine/serving.py:242@0decac0 ("does not exist.")).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mini_vllm.detokenizer import IncrementalDetokenizer
from mini_vllm.engine import LLMEngine
from mini_vllm.entrypoints.chat_template import ROLES, ChatTemplate
from mini_vllm.entrypoints.tool_parser import Hermes2ProToolParser
from mini_vllm.sampler import SamplingParams

TOOL_PARSERS = {"hermes": Hermes2ProToolParser}


class OpenAIError(Exception):
    """A request the server refuses; becomes ``{"error": {...}}`` with ``status``."""

    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 err_type: str = "BadRequestError") -> None:
        super().__init__(message)
        self.message, self.param, self.status, self.err_type = message, param, status, err_type

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.err_type, "param": self.param, "code": self.status}}


def error_response(err: OpenAIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


@dataclass
class StepOutput:
    """What one engine step produced for one request."""

    new_token_ids: list[int]
    finish_reason: str | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


class AsyncEngine:
    """One loop stepping one ``LLMEngine`` for every request of the server."""

    def __init__(self, engine: LLMEngine) -> None:
        self.engine = engine
        self._queues: dict[str, asyncio.Queue] = {}
        self._sent: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.num_steps = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def num_live(self) -> int:
        return len(self._queues)

    def add_request(self, request_id: str, prompt_token_ids: list[int], params: SamplingParams) -> asyncio.Queue:
        self.engine.add_request(prompt_token_ids, params, request_id=request_id)  # raises, changing nothing
        queue: asyncio.Queue = asyncio.Queue()
        self._queues[request_id] = queue
        self._sent[request_id] = 0
        self._wake.set()
        return queue

    def abort(self, request_id: str) -> None:
        """Drop the request's queue and abort it in the engine; the loop's next step
        reports it finished (blocks are freed by the abort itself). A request that
        already finished is left alone."""
        if self._queues.pop(request_id, None) is None:
            return
        self._sent.pop(request_id, None)
        try:
            self.engine.abort_request(request_id)
        except KeyError:
            pass
        self._wake.set()

    def generate(self, request_id: str, prompt_token_ids: list[int], params: SamplingParams):
        """Admit the request now (a refusal raises here, before any response is sent) and
        return an async iterator of ``StepOutput``: one per step that gave the request
        tokens, the last with a ``finish_reason``. Closing or cancelling it early aborts."""
        return self._outputs(request_id, self.add_request(request_id, prompt_token_ids, params))

    async def _outputs(self, request_id: str, queue: asyncio.Queue):
        try:
            while True:
                out = await queue.get()
                yield out
                if out.finished:
                    return
        finally:
            if request_id in self._queues:
                self.abort(request_id)

    async def _run(self) -> None:
        while True:
            if not self.engine.has_unfinished_requests():
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                finished = self.engine.step()
            except Exception as exc:  # a broken engine fails every live request, loudly
                for rid, queue in list(self._queues.items()):
                    self.abort(rid)
                    queue.put_nowait(StepOutput([], "error", error=f"{type(exc).__name__}: {exc}"))
                raise
            self.num_steps += 1
            for out in finished:
                queue = self._queues.pop(out.request_id, None)
                sent = self._sent.pop(out.request_id, 0)
                if queue is not None:
                    error = out.stop_reason if out.finish_reason == "error" else None
                    queue.put_nowait(StepOutput(out.output_token_ids[sent:], out.finish_reason, error))
            requests = self.engine.scheduler.requests
            for rid, queue in self._queues.items():
                request = requests.get(rid)
                if request is not None and request.num_output_tokens > self._sent[rid]:
                    queue.put_nowait(StepOutput(request.output_token_ids[self._sent[rid]:]))
                    self._sent[rid] = request.num_output_tokens
            await asyncio.sleep(0)  # let handlers add, read and abort between steps


# -- request validation ------------------------------------------------------------------

def _number(body: dict, name: str, default, kind=(int, float)):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, kind):
        raise OpenAIError(f"{name} must be a number, got {value!r}", name)
    return value


def _token_ids(body: dict, name: str) -> tuple:
    value = body.get(name) or ()
    if not isinstance(value, list | tuple):
        raise OpenAIError(f"{name} must be a list of token ids, got {value!r}", name)
    return tuple(value)


def sampling_params(body: dict, num_prompt_tokens: int, max_model_len: int) -> SamplingParams:
    """The request body's sampling fields as ``SamplingParams``, or an ``OpenAIError``.

    ``max_tokens`` defaults to what is left of the context window, as upstream's
    vllm/entrypoints/utils.py:175@0decac0 (get_max_tokens) computes it, and a request whose
    prompt plus ``max_tokens`` exceeds ``max_model_len`` is refused rather than cut short,
    as upstream's renderer refuses it
    (vllm/renderers/params.py:421@0decac0 ("if len(tokens) > max_input_tokens:"))."""
    if num_prompt_tokens >= max_model_len:
        prompt_param = "messages" if "messages" in body else "prompt"
        raise OpenAIError(f"the prompt has {num_prompt_tokens} tokens; the model's maximum context length is "
                          f"{max_model_len} tokens, which leaves no room for output", prompt_param)
    room = max_model_len - num_prompt_tokens
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    if max_tokens is None:
        max_tokens = room
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise OpenAIError(f"{param} must be an integer, got {max_tokens!r}", param)
    elif max_tokens > room:
        raise OpenAIError(f"{param}={max_tokens} is too large: the prompt has {num_prompt_tokens} tokens and the "
                          f"model's maximum context length is {max_model_len} tokens (at most {room} output "
                          "tokens)", param)
    if body.get("n", 1) != 1:
        raise OpenAIError("mini_vllm serves one choice per request (n=1)", "n")
    if body.get("stop"):
        raise OpenAIError("stop strings are not supported by mini_vllm; use stop_token_ids", "stop")
    if body.get("logprobs"):
        raise OpenAIError("logprobs are not supported by mini_vllm", "logprobs")
    try:
        return SamplingParams(
            temperature=_number(body, "temperature", 1.0), top_p=_number(body, "top_p", 1.0),
            top_k=_number(body, "top_k", 0, int), min_p=_number(body, "min_p", 0.0),
            seed=_number(body, "seed", None, int), max_tokens=max_tokens,
            stop_token_ids=_token_ids(body, "stop_token_ids"), ignore_eos=bool(body.get("ignore_eos", False)))
    except ValueError as exc:  # SamplingParams names the field first: "temperature must be ..."
        raise OpenAIError(str(exc), str(exc).split(" ", 1)[0]) from None


def check_messages(messages) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise OpenAIError("messages must be a non-empty list of {role, content} objects", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise OpenAIError(f"messages[{i}] needs a role, one of {', '.join(ROLES)}", "messages")
        content = m.get("content")
        parts_ok = isinstance(content, list) and all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content)
        if not (isinstance(content, str) or parts_ok or (content is None and m["role"] == "assistant")):
            raise OpenAIError(f"messages[{i}].content must be a string or a list of text parts", "messages")
    return messages


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


# -- the app -----------------------------------------------------------------------------

class OpenAIServer:
    """The handlers, sharing one ``AsyncEngine``. ``build_app`` wires them to routes."""

    def __init__(self, engine: LLMEngine, model_name: str = "tiny", chat_template: ChatTemplate | None = None,
                 enable_auto_tool_choice: bool = False, tool_call_parser: str | None = None) -> None:
        self.engine = engine
        self.async_engine = AsyncEngine(engine)
        self.model_name = model_name
        self.max_model_len = engine.engine_core.config.max_model_len
        self.chat_template = chat_template or ChatTemplate()
        if tool_call_parser is not None and tool_call_parser not in TOOL_PARSERS:
            raise ValueError(f"unknown tool call parser {tool_call_parser!r}; known: {', '.join(TOOL_PARSERS)}")
        if enable_auto_tool_choice and tool_call_parser is None:
            raise ValueError("enable_auto_tool_choice needs a tool_call_parser (hermes)")
        self.enable_auto_tool_choice = enable_auto_tool_choice
        self.tool_parser_cls = TOOL_PARSERS.get(tool_call_parser) if tool_call_parser else None
        self.created = int(time.time())

    def check_model(self, body: dict) -> None:
        if body.get("model") != self.model_name:
            raise OpenAIError(f"The model `{body.get('model')}` does not exist.", "model", 404, "NotFoundError")

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model_name, "object": "model", "created": self.created,
                                             "owned_by": "mini_vllm", "max_model_len": self.max_model_len}]}

    # -- /v1/completions --
    def prepare_completion(self, body: dict) -> tuple[list[int], SamplingParams]:
        self.check_model(body)
        prompt = body.get("prompt")
        if isinstance(prompt, str) and prompt:
            ids = self.engine.tokenizer.encode(prompt)
        elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            ids = list(prompt)
            vocab = self.engine.engine_core.vocab_size
            if min(ids) < 0 or max(ids) >= vocab:
                raise OpenAIError(f"prompt token ids must be in [0, {vocab})", "prompt")
        else:
            raise OpenAIError("prompt must be a non-empty string or a non-empty list of token ids "
                              "(mini_vllm serves one prompt per request)", "prompt")
        return ids, sampling_params(body, len(ids), self.max_model_len)

    async def completion(self, body: dict):
        ids, params = self.prepare_completion(body)
        rid = f"cmpl-{uuid.uuid4().hex}"
        head = {"id": rid, "object": "text_completion", "created": int(time.time()), "model": self.model_name}
        detok = IncrementalDetokenizer(self.engine.tokenizer, ids)
        if body.get("stream"):
            return self._stream(rid, ids, params, detok, head, body, chat=False)
        text, n_out, finish = "", 0, None
        async for out in self.async_engine.generate(rid, ids, params):
            n_out += len(out.new_token_ids)
            text += "".join(detok.decode_next(t) for t in out.new_token_ids)
            finish = out.finish_reason
            if out.error:
                raise OpenAIError(f"generation failed: {out.error}", None, 500, "InternalServerError")
        text += detok.finish()
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None}
        return dict(head, choices=[choice], usage=_usage(len(ids), n_out))

    # -- /v1/chat/completions --
    def prepare_chat(self, body: dict) -> tuple[list[int], SamplingParams, bool]:
        self.check_model(body)
        messages = check_messages(body.get("messages"))
        tools = body.get("tools") or None
        tool_choice = body.get("tool_choice", "auto" if tools else "none")
        if tools is not None and not (isinstance(tools, list) and all(
                isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
                and isinstance(t["function"].get("name"), str) for t in tools)):
            raise OpenAIError("tools must be a list of {type: function, function: {name, parameters}}", "tools")
        if tool_choice not in ("auto", "none"):
            raise OpenAIError("mini_vllm supports tool_choice 'auto' and 'none' (upstream forces 'required' and "
                              "named choices with structured outputs)", "tool_choice")
        use_tools = bool(tools) and tool_choice == "auto"
        if use_tools and not self.enable_auto_tool_choice:
            raise OpenAIError('"auto" tool choice needs the server started with --enable-auto-tool-choice and '
                              "--tool-call-parser", "tool_choice")
        prompt = self.chat_template.render(messages, tools if use_tools else None)
        ids = self.engine.tokenizer.encode(prompt)
        return ids, sampling_params(body, len(ids), self.max_model_len), use_tools

    async def chat(self, body: dict):
        ids, params, use_tools = self.prepare_chat(body)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        head = {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": self.model_name}
        detok = IncrementalDetokenizer(self.engine.tokenizer, ids)
        parser = self.tool_parser_cls() if use_tools else None
        if body.get("stream"):
            return self._stream(rid, ids, params, detok, dict(head, object="chat.completion.chunk"), body,
                                chat=True, parser=parser)
        text, n_out, finish = "", 0, None
        async for out in self.async_engine.generate(rid, ids, params):
            n_out += len(out.new_token_ids)
            text += "".join(detok.decode_next(t) for t in out.new_token_ids)
            finish = out.finish_reason
            if out.error:
                raise OpenAIError(f"generation failed: {out.error}", None, 500, "InternalServerError")
        text += detok.finish()
        message: dict = {"role": "assistant", "content": text}
        if parser is not None:
            info = parser.extract_tool_calls(text)
            if info.tools_called:
                message = {"role": "assistant", "content": info.content,
                           "tool_calls": [c.to_openai() for c in info.tool_calls]}
                finish = "tool_calls"
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return dict(head, choices=[choice], usage=_usage(len(ids), n_out))

    # -- streaming, both endpoints --
    def _stream(self, rid, ids, params, detok, head, body, chat: bool, parser=None):
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))

        def chunk(delta_or_text, finish=None) -> str:
            if chat:
                choice = {"index": 0, "delta": delta_or_text, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": delta_or_text, "logprobs": None, "finish_reason": finish}
            return _sse(dict(head, choices=[choice]))

        def deltas(text: str, final: bool) -> list[dict]:
            if parser is None:
                return [{"content": text}] if text else []
            out = []
            for msg in (parser.extract_tool_calls_streaming(text) if text else None,
                        parser.finish() if final else None):
                if msg is None:
                    continue
                delta: dict = {}
                if msg.content:
                    delta["content"] = msg.content
                if msg.tool_calls:
                    delta["tool_calls"] = [d.to_openai() for d in msg.tool_calls]
                if delta:
                    out.append(delta)
            return out

        outputs = self.async_engine.generate(rid, ids, params)

        async def events():
            n_out = 0
            try:
                if chat:
                    yield chunk({"role": "assistant", "content": ""})
                async for out in outputs:
                    n_out += len(out.new_token_ids)
                    if out.error:
                        yield _sse(OpenAIError(f"generation failed: {out.error}", None, 500, "InternalServerError").body())
                        break
                    text = "".join(detok.decode_next(t) for t in out.new_token_ids)
                    if out.finished:
                        text += detok.finish()
                    if chat:
                        for delta in deltas(text, out.finished):
                            yield chunk(delta)
                    elif text:
                        yield chunk(text)
                    if out.finished:
                        finish = out.finish_reason
                        if parser is not None and parser.prev_tool_call_arr:
                            finish = "tool_calls"
                        yield chunk({} if chat else "", finish)
            finally:
                await outputs.aclose()  # a client that left mid-stream: abort, free the blocks
            if include_usage:
                yield _sse(dict(head, choices=[], usage=_usage(len(ids), n_out)))
            yield "data: [DONE]\n\n"

        return EventStreamResponse(events(), on_close=lambda: self.async_engine.abort(rid))


class EventStreamResponse(Response):
    """An SSE response that notices a client hanging up, even between chunks.

    The body runs as one task and a watcher waiting for ``http.disconnect`` as another;
    whichever ends first cancels the other, and closing the event iterator aborts the
    engine request. This is the pattern of upstream's
    vllm/entrypoints/utils.py:57@0decac0 (with_cancellation), applied to the stream
    itself. (Starlette's ``StreamingResponse`` runs the same race through an anyio task
    group; under uvicorn 0.55 and Starlette 1.10 a body waiting on the engine queue was
    not cancelled by it in this server's tests, and the request ran to ``max_tokens``.)
    """

    def __init__(self, events, on_close=None) -> None:
        super().__init__(media_type="text/event-stream")
        self.events = events
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        async def stream() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]})
            async for event in self.events:
                await send({"type": "http.response.body", "body": event.encode("utf-8"), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        body, watcher = asyncio.create_task(stream()), asyncio.create_task(disconnected())
        try:
            await asyncio.wait([body, watcher], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (body, watcher):
                task.cancel()
            await asyncio.gather(body, watcher, return_exceptions=True)
            await self.events.aclose()
            if self.on_close is not None:  # also when the body never started iterating
                self.on_close()


def build_app(engine: LLMEngine, model_name: str = "tiny", **server_kwargs) -> FastAPI:
    """The FastAPI app; the engine loop starts with the app and stops with it."""
    server = OpenAIServer(engine, model_name, **server_kwargs)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        server.async_engine.start()
        yield
        await server.async_engine.stop()

    app = FastAPI(title="mini_vllm OpenAI-compatible server", lifespan=lifespan)
    app.state.server = server

    async def json_body(request: Request) -> dict:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise OpenAIError("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise OpenAIError("the request body must be a JSON object")
        return body

    async def respond(request: Request, handler):
        try:
            result = await handler(await json_body(request))
        except OpenAIError as err:
            return error_response(err)
        except ValueError as exc:  # the engine refused the request at admission
            return error_response(OpenAIError(str(exc)))
        if isinstance(result, dict):
            return JSONResponse(result)
        return result

    @app.get("/health")
    async def health():
        return JSONResponse({})

    @app.get("/v1/models")
    async def models():
        return JSONResponse(server.models())

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await respond(request, server.completion)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await respond(request, server.chat)

    return app


def serve(args, engine: LLMEngine) -> int:
    import uvicorn

    template = ChatTemplate() if engine.engine_core.config.model in ("tiny", "toy") else \
        ChatTemplate.from_model_dir(engine.engine_core.config.model)
    app = build_app(engine, args.served_model_name or args.model, chat_template=template,
                    enable_auto_tool_choice=args.enable_auto_tool_choice, tool_call_parser=args.tool_call_parser)
    print(f"mini_vllm serving {args.served_model_name or args.model} on http://{args.host}:{args.port}/v1 "
          f"(chat template: {template.source})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
