"""The Hermes tool-call parser: ``<tool_call>{json}</tool_call>`` text -> OpenAI tool calls.

A tool-calling model emits text that describes a call; Hermes-format models (Qwen2.5,
Hermes 2 Pro, ...) were trained to wrap a JSON object ``{"name": ..., "arguments": {...}}``
in ``<tool_call>`` tags. The server turns that text into the response's structured
``tool_calls``, in one piece (``extract_tool_calls``) or while streaming
(``extract_tool_calls_streaming``).

Mirrors vllm/tool_parsers/hermes_tool_parser.py:34@0decac0 (Hermes2ProToolParser) at the
pin, method for method:

- batch: every ``<tool_call>`` block (closed, or open to the end of the text) is parsed;
  ``content`` is the text before the first tag (text between or after calls is dropped),
  and any JSON error turns the whole output back into plain content with no calls;
- streaming: the full text so far is re-parsed on every delta and diffed against what
  was sent: content up to the first tag, holding back a suffix that may still become
  ``<tool_call>``; per call, the name once it is complete, then argument text as it grows.

What mini_vllm adds: ``finish()``, which releases a held suffix when the stream ends (at
the pin a plain answer ending in "<tool" never sends those characters), so that the
streamed pieces always add up to the batch parse of the same text.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

TOOL_CALL_START = "<tool_call>"
TOOL_CALL_END = "</tool_call>"
_TOOL_CALL_RE = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)
_NAME_RE = re.compile(r'"name"\s*:\s*"([^"]+)"')
_ARGS_RE = re.compile(r'"arguments"\s*:\s*')


def make_tool_call_id() -> str:
    """Upstream's id format, 16 random hex digits:
    vllm/entrypoints/chat_utils.py:1946@0decac0 (make_tool_call_id)."""
    return f"chatcmpl-tool-{uuid.uuid4().int & (2**64 - 1):016x}"


@dataclass
class ToolCall:
    name: str
    arguments: str  # a JSON string, as the OpenAI API carries it
    id: str = field(default_factory=make_tool_call_id)
    type: str = "function"

    def to_openai(self) -> dict:
        return {"id": self.id, "type": self.type, "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class ExtractedToolCallInformation:
    tools_called: bool
    tool_calls: list[ToolCall]
    content: str | None


@dataclass
class DeltaToolCall:
    """One piece of a streamed call: the first piece of call ``index`` carries its id and
    name, later pieces carry argument text to append."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None

    def to_openai(self) -> dict:
        out: dict = {"index": self.index}
        if self.id is not None:
            out.update(id=self.id, type="function")
        fn = {k: v for k, v in (("name", self.name), ("arguments", self.arguments)) if v is not None}
        if fn:
            out["function"] = fn
        return out


@dataclass
class DeltaMessage:
    content: str | None = None
    tool_calls: list[DeltaToolCall] = field(default_factory=list)


def partial_tag_overlap(text: str, tag: str) -> int:
    """Length of the longest proper prefix of ``tag`` that ``text`` ends with, as
    vllm/tool_parsers/utils.py:34@0decac0 (partial_tag_overlap)."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


def is_complete_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except json.JSONDecodeError:
        return False


class Hermes2ProToolParser:
    """One parser per request (it holds the request's streaming state)."""

    def __init__(self, id_factory=make_tool_call_id) -> None:
        self.id_factory = id_factory
        self.current_text = ""
        self._sent_content_idx = 0
        self.prev_tool_call_arr: list[dict] = []  # per call: what was sent ("name", "arguments")
        self.streamed_args_for_tool: list[str] = []

    # -- batch -------------------------------------------------------------------------
    def extract_tool_calls(self, model_output: str) -> ExtractedToolCallInformation:
        if TOOL_CALL_START not in model_output:
            return ExtractedToolCallInformation(False, [], model_output)
        try:
            raw = [json.loads(closed or open_) for closed, open_ in _TOOL_CALL_RE.findall(model_output)]
            calls = [ToolCall(c["name"], json.dumps(c["arguments"], ensure_ascii=False), id=self.id_factory())
                     for c in raw]
        except (json.JSONDecodeError, KeyError, TypeError):
            return ExtractedToolCallInformation(False, [], model_output)
        content = model_output[: model_output.find(TOOL_CALL_START)]
        return ExtractedToolCallInformation(True, calls, content or None)

    # -- streaming ---------------------------------------------------------------------
    def _extract_content(self, text: str) -> str | None:
        if TOOL_CALL_START in text:
            sendable = text.index(TOOL_CALL_START)
        else:
            sendable = len(text) - partial_tag_overlap(text, TOOL_CALL_START)
        if sendable > self._sent_content_idx:
            content = text[self._sent_content_idx:sendable]
            self._sent_content_idx = sendable
            return content
        return None

    @staticmethod
    def _extract_tool_call_jsons(text: str) -> list[tuple[str, bool]]:
        """(json text, is complete) of every ``<tool_call>`` region seen so far."""
        out, pos = [], 0
        while (start := text.find(TOOL_CALL_START, pos)) != -1:
            body = start + len(TOOL_CALL_START)
            end = text.find(TOOL_CALL_END, body)
            if end != -1:
                out.append((text[body:end].strip(), True))
                pos = end + len(TOOL_CALL_END)
                continue
            raw = text[body:]
            overlap = partial_tag_overlap(raw, TOOL_CALL_END)
            raw = (raw[:-overlap] if overlap else raw).strip()
            out.append((raw, bool(raw) and is_complete_json(raw)))
            break
        return out

    @staticmethod
    def _extract_tool_name(tc_json: str) -> str | None:
        """The call's name, or None until its closing quote has arrived."""
        match = _NAME_RE.search(tc_json)
        return match.group(1) if match else None

    @staticmethod
    def _extract_tool_args(tc_json: str, is_complete: bool) -> str | None:
        match = _ARGS_RE.search(tc_json)
        if match is None:
            return None
        raw = tc_json[match.end():]
        if is_complete:
            raw = raw.rstrip()
            if raw.endswith("}"):  # the brace that closes the outer object
                raw = raw[:-1].rstrip()
        return raw

    def extract_tool_calls_streaming(self, delta_text: str) -> DeltaMessage | None:
        """Append ``delta_text``; return what is new for the client, or None."""
        self.current_text += delta_text
        content = self._extract_content(self.current_text)
        deltas: list[DeltaToolCall] = []
        for i, (tc_json, is_complete) in enumerate(self._extract_tool_call_jsons(self.current_text)):
            if i == len(self.prev_tool_call_arr):
                self.prev_tool_call_arr.append({})
                self.streamed_args_for_tool.append("")
            if "name" not in self.prev_tool_call_arr[i]:
                name = self._extract_tool_name(tc_json)
                if name is None:
                    break  # call i+1 cannot start before call i has a name
                self.prev_tool_call_arr[i]["name"] = name
                deltas.append(DeltaToolCall(i, id=self.id_factory(), name=name))
            args = self._extract_tool_args(tc_json, is_complete)
            if args is not None and len(args) > len(self.streamed_args_for_tool[i]):
                diff = args[len(self.streamed_args_for_tool[i]):]
                self.streamed_args_for_tool[i] = args
                self.prev_tool_call_arr[i]["arguments"] = args
                deltas.append(DeltaToolCall(i, arguments=diff))
        if content or deltas:
            return DeltaMessage(content=content, tool_calls=deltas)
        return None

    def finish(self) -> DeltaMessage | None:
        """End of stream: release held content if no tool call ever started."""
        if TOOL_CALL_START in self.current_text or self._sent_content_idx == len(self.current_text):
            return None
        content = self.current_text[self._sent_content_idx:]
        self._sent_content_idx = len(self.current_text)
        return DeltaMessage(content=content)
