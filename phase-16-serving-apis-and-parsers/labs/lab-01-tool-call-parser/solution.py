"""Lab 16-01: the Hermes tool-call parser, batch and streaming (reference solution).

A Hermes-format model answers a tool request with text such as
``Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>``.
The server turns it into OpenAI ``tool_calls``: in one piece for a plain response
(``extract_tool_calls``), or delta by delta while the text is still arriving
(``StreamingToolParser``). At the pin this is
vllm/tool_parsers/hermes_tool_parser.py:34@0decac0 (Hermes2ProToolParser);
``mini_vllm.entrypoints.tool_parser`` holds the
engine's copy, which the tests use as an oracle.
"""
from __future__ import annotations

import json
import re

from mini_vllm.entrypoints.tool_parser import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    DeltaMessage,
    DeltaToolCall,
    ExtractedToolCallInformation,
    Hermes2ProToolParser,
    ToolCall,
    is_complete_json,
    make_tool_call_id,
)

# Given (from mini_vllm): a call's name once its closing quote has arrived, or None; and a
# call's argument text, without the brace that closes the outer object once complete.
extract_tool_name = Hermes2ProToolParser._extract_tool_name
extract_tool_args = Hermes2ProToolParser._extract_tool_args

# Both forms upstream accepts: a closed block, or a block still open at the end of the text.
TOOL_CALL_RE = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)


def partial_tag_overlap(text: str, tag: str) -> int:
    """Length of the longest proper prefix of ``tag`` that ``text`` ends with (0 if none).

    ``partial_tag_overlap("Sure <tool_", "<tool_call>") == 6``. A whole ``tag`` is not a
    partial one: the answer is at most ``len(tag) - 1``."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


def extract_tool_calls(model_output: str, id_factory=make_tool_call_id) -> ExtractedToolCallInformation:
    """Batch parse of a whole output.

    No start tag: no calls, the whole text is content. Otherwise every block (closed, or
    open to the end) is JSON-parsed into a ``ToolCall`` whose ``arguments`` is the
    arguments object re-serialized with ``json.dumps(..., ensure_ascii=False)``;
    ``content`` is the text before the first tag, or None if that is empty. Any block that
    is not valid JSON with a ``name`` and ``arguments`` turns the whole output back into
    plain content with no calls."""
    if TOOL_CALL_START not in model_output:
        return ExtractedToolCallInformation(False, [], model_output)
    try:
        blocks = [json.loads(closed or still_open) for closed, still_open in TOOL_CALL_RE.findall(model_output)]
        calls = [ToolCall(b["name"], json.dumps(b["arguments"], ensure_ascii=False), id=id_factory())
                 for b in blocks]
    except (json.JSONDecodeError, KeyError, TypeError):
        return ExtractedToolCallInformation(False, [], model_output)
    content = model_output[: model_output.index(TOOL_CALL_START)]
    return ExtractedToolCallInformation(True, calls, content or None)


class StreamingToolParser:
    """One per request. ``feed(delta_text)`` returns a ``DeltaMessage`` with what is new
    for the client, or None; ``finish()`` is called once when the stream ends.

    State, as upstream keeps it: the text so far, how much of it was sent as content,
    and per call what was sent (``prev_tool_call_arr[i]`` gets "name" and "arguments";
    ``streamed_args_for_tool[i]`` is the argument text sent so far)."""

    def __init__(self, id_factory=make_tool_call_id) -> None:
        self.id_factory = id_factory
        self.current_text = ""
        self.sent_content_idx = 0
        self.prev_tool_call_arr: list[dict] = []
        self.streamed_args_for_tool: list[str] = []

    def extract_content(self, text: str) -> str | None:
        """Unsent content of ``text``: everything before the first start tag; with no tag
        yet, everything except a suffix that could still become one. None if nothing new."""
        if TOOL_CALL_START in text:
            sendable = text.index(TOOL_CALL_START)
        else:
            sendable = len(text) - partial_tag_overlap(text, TOOL_CALL_START)
        if sendable <= self.sent_content_idx:
            return None
        content = text[self.sent_content_idx:sendable]
        self.sent_content_idx = sendable
        return content

    @staticmethod
    def extract_tool_call_jsons(text: str) -> list[tuple[str, bool]]:
        """``(json_text, is_complete)`` per ``<tool_call>`` region, in order: a closed region
        is complete; an open one (only ever the last) loses any partial end tag, is
        stripped, and is complete only if it already parses as JSON."""
        regions, pos = [], 0
        while (start := text.find(TOOL_CALL_START, pos)) != -1:
            body = start + len(TOOL_CALL_START)
            end = text.find(TOOL_CALL_END, body)
            if end != -1:
                regions.append((text[body:end].strip(), True))
                pos = end + len(TOOL_CALL_END)
                continue
            tail = text[body:]
            held = partial_tag_overlap(tail, TOOL_CALL_END)
            tail = tail[: len(tail) - held].strip()
            regions.append((tail, bool(tail) and is_complete_json(tail)))
            break
        return regions

    def feed(self, delta_text: str) -> DeltaMessage | None:
        """Append ``delta_text``, re-parse the whole text, send only what is new: the
        content (``extract_content``), then per region: its name with a fresh id the first
        time it is complete (no later call may start before an earlier one is named), then
        the argument text beyond what was already streamed for it."""
        self.current_text += delta_text
        content = self.extract_content(self.current_text)
        deltas: list[DeltaToolCall] = []
        for i, (tc_json, is_complete) in enumerate(self.extract_tool_call_jsons(self.current_text)):
            if i == len(self.prev_tool_call_arr):
                self.prev_tool_call_arr.append({})
                self.streamed_args_for_tool.append("")
            if "name" not in self.prev_tool_call_arr[i]:
                name = extract_tool_name(tc_json)
                if name is None:
                    break
                self.prev_tool_call_arr[i]["name"] = name
                deltas.append(DeltaToolCall(i, id=self.id_factory(), name=name))
            args = extract_tool_args(tc_json, is_complete)
            sent = self.streamed_args_for_tool[i]
            if args is not None and len(args) > len(sent):
                deltas.append(DeltaToolCall(i, arguments=args[len(sent):]))
                self.streamed_args_for_tool[i] = args
                self.prev_tool_call_arr[i]["arguments"] = args
        if content or deltas:
            return DeltaMessage(content=content, tool_calls=deltas)
        return None

    def finish(self) -> DeltaMessage | None:
        """End of stream. If no call ever started, release the held-back suffix (it was a
        false alarm after all); otherwise there is nothing more to send."""
        if TOOL_CALL_START in self.current_text or self.sent_content_idx == len(self.current_text):
            return None
        content = self.current_text[self.sent_content_idx:]
        self.sent_content_idx = len(self.current_text)
        return DeltaMessage(content=content)


def stream_parse(chunks, id_factory=make_tool_call_id) -> tuple[str, list[ToolCall]]:
    """Given: feed ``chunks`` through a ``StreamingToolParser`` and assemble what a client
    would: the content, and one ``ToolCall`` per index (first id and name, joined arguments)."""
    parser = StreamingToolParser(id_factory)
    messages = [parser.feed(c) for c in chunks] + [parser.finish()]
    content, calls = "", {}
    for msg in messages:
        if msg is None:
            continue
        content += msg.content or ""
        for d in msg.tool_calls:
            call = calls.setdefault(d.index, ToolCall(d.name or "", "", id=d.id or ""))
            call.arguments += d.arguments or ""
    return content, [calls[i] for i in sorted(calls)]


if __name__ == "__main__":
    text = 'Sure. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    ids = iter(f"call-{n}" for n in range(100))
    info = extract_tool_calls(text, lambda: next(ids))
    print(f"batch: content={info.content!r} calls={[(c.name, c.arguments) for c in info.tool_calls]}")
    parser = StreamingToolParser(lambda: next(ids))
    for chunk in ["Sure. <to", "ol_call>\n{\"name\": \"get_", "weather\", \"argu", "ments\": {\"city\": \"Pa",
                  "ris\"}}\n</tool", "_call>"]:
        print(f"feed {chunk!r:34} -> {parser.feed(chunk)}")
    print(f"finish -> {parser.finish()}")
