"""Lab 16-01 spec: the Hermes tool-call parser, batch and streaming, under every chunking.

The streaming parser's contract is chunking invariance: however the text is cut into
deltas, the client assembles the same content and the same calls as the batch parse.
Checked at every single split position and on 50 random chunkings per output (fixed
seed), and delta for delta against mini_vllm's own parser.
"""
import importlib.util
import itertools
import json
import random

import pytest

from mini_vllm.entrypoints.tool_parser import Hermes2ProToolParser

WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}'
OUTPUTS = {
    "plain": "The answer is 42.",
    "false-alarm": "<today> is sunny; a < b <to",
    "one-call": f"Sure. <tool_call>\n{WEATHER}\n</tool_call>",
    "no-content": f"<tool_call>{WEATHER}</tool_call>",
    "two-calls": (f"Checking both. <tool_call>{WEATHER}</tool_call>\n<tool_call>\n"
                  '{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call> done'),
    "unicode": 'Voilà <tool_call>{"name": "lookup", "arguments": {"city": "Zürich 🚀"}}</tool_call>',
    "tricky-strings": ('<tool_call>{"name": "render", "arguments": {"html": "</b> a<b", "n": [1, {"k": "}"}]}}'
                       "</tool_call>"),
    "open-at-end": f"ok <tool_call>{WEATHER}",
}


def ids():
    counter = itertools.count()
    return lambda: f"call-{next(counter)}"


def summary(content, calls):
    return content, [(c.name, json.loads(c.arguments)) for c in calls]


def batch_summary(lab, text):
    info = lab.extract_tool_calls(text, ids())
    return summary(info.content or "", info.tool_calls)


def chunkings(text, rng, n):
    for _ in range(n):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, min(len(text) - 1, 25))))
        yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


# -- partial_tag_overlap --------------------------------------------------------------

@pytest.mark.parametrize("text, n", [("Sure <tool_", 6), ("a <", 1), ("<tool_call", 10), ("<tool_call>", 0),
                                     ("plain", 0), ("", 0), ("<<", 1), ("x</tool_call", 0)])
def test_partial_tag_overlap_is_the_longest_proper_prefix_at_the_end(lab, text, n):
    assert lab.partial_tag_overlap(text, "<tool_call>") == n


@pytest.mark.parametrize("text, tag, n", [("xaa", "aab", 2), ("abab", "ababc", 4), ("[TOOL_CALLS", "[TOOL_CALLS]", 11)])
def test_partial_tag_overlap_prefers_the_longest_when_several_fit(lab, text, tag, n):
    assert lab.partial_tag_overlap(text, tag) == n, "both 'a' and 'aa' end 'xaa': hold back the longer"


def test_partial_tag_overlap_against_brute_force(lab):
    rng = random.Random(16)
    tag = "</tool_call>"
    for _ in range(300):
        text = "".join(rng.choice("</tol_ca>x") for _ in range(rng.randint(0, 14)))
        want = max(k for k in range(len(tag)) if k == 0 or text.endswith(tag[:k]))
        assert lab.partial_tag_overlap(text, tag) == want, f"text={text!r}"


# -- batch ----------------------------------------------------------------------------

def test_text_without_a_tag_is_all_content(lab):
    info = lab.extract_tool_calls("Hello <b>there</b>", ids())
    assert (info.tools_called, info.tool_calls, info.content) == (False, [], "Hello <b>there</b>")


def test_batch_extracts_calls_in_order_and_content_before_the_first_tag(lab):
    info = lab.extract_tool_calls(OUTPUTS["two-calls"], ids())
    assert info.tools_called and info.content == "Checking both. ", "text after the calls (' done') is dropped"
    assert [(c.name, json.loads(c.arguments)) for c in info.tool_calls] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_time", {"tz": "CET"})]
    assert [c.id for c in info.tool_calls] == ["call-0", "call-1"] and {c.type for c in info.tool_calls} == {"function"}


def test_empty_content_before_the_tag_is_none(lab):
    assert lab.extract_tool_calls(OUTPUTS["no-content"], ids()).content is None


def test_arguments_are_a_json_string_keeping_non_ascii(lab):
    (call,) = lab.extract_tool_calls(OUTPUTS["unicode"], ids()).tool_calls
    assert call.arguments == '{"city": "Zürich 🚀"}', "json.dumps(arguments, ensure_ascii=False)"


def test_a_block_still_open_at_the_end_is_parsed(lab):
    info = lab.extract_tool_calls(OUTPUTS["open-at-end"], ids())
    assert info.tools_called and [c.name for c in info.tool_calls] == ["get_weather"]


@pytest.mark.parametrize("text", ['a <tool_call>{"name": "f", "arguments": {</tool_call>',
                                  'a <tool_call>{"arguments": {}}</tool_call>',
                                  'a <tool_call>{"name": "f"}</tool_call>',
                                  'a <tool_call>[1, 2]</tool_call>'],
                         ids=["bad-json", "no-name", "no-arguments", "not-an-object"])
def test_a_bad_block_turns_the_whole_output_into_content(lab, text):
    info = lab.extract_tool_calls(text, ids())
    assert (info.tools_called, info.tool_calls, info.content) == (False, [], text), \
        "upstream's fallback: no calls, the raw output as content"


# -- streaming: the hold-back -----------------------------------------------------------

def test_content_before_a_tag_is_sent_at_once(lab):
    p = lab.StreamingToolParser(ids())
    assert p.feed("Sure. ").content == "Sure. "


def test_a_half_tag_is_held_back(lab):
    p = lab.StreamingToolParser(ids())
    msg = p.feed("Sure. <tool")
    assert msg.content == "Sure. " and msg.tool_calls == [], "'<tool' might still become <tool_call>"
    assert p.feed("_ca") is None


def test_a_false_alarm_is_released_when_disproven(lab):
    p = lab.StreamingToolParser(ids())
    assert p.feed("<to") is None
    assert p.feed("day> is") .content == "<today> is"


def test_finish_releases_a_held_suffix_when_no_call_started(lab):
    p = lab.StreamingToolParser(ids())
    assert p.feed("x <tool").content == "x "
    assert p.finish().content == "<tool"
    assert p.finish() is None


def test_nothing_after_the_first_tag_is_content(lab):
    p = lab.StreamingToolParser(ids())
    for chunk in ["a ", f"<tool_call>{WEATHER}</tool_call>", " trailing words"]:
        msg = p.feed(chunk)
        assert msg is None or msg.content in (None, "a ")
    assert p.finish() is None


# -- streaming: calls -------------------------------------------------------------------

def test_name_comes_once_with_the_id_then_argument_fragments(lab):
    p = lab.StreamingToolParser(ids())
    assert p.feed('<tool_call>{"name": "get_wea') is None, "no name before its closing quote"
    msg = p.feed('ther", "arguments": {"ci')
    (first, second) = msg.tool_calls
    assert (first.index, first.id, first.name, first.arguments) == (0, "call-0", "get_weather", None)
    assert (second.index, second.id, second.name, second.arguments) == (0, None, None, '{"ci')
    msg = p.feed('ty": "Paris"}}</tool_call>')
    assert [(d.index, d.id, d.name, d.arguments) for d in msg.tool_calls] == [(0, None, None, 'ty": "Paris"}')]


def test_regions_report_completeness(lab):
    text = f'<tool_call>{WEATHER}</tool_call><tool_call> {{"name": "f", "arg'
    assert lab.StreamingToolParser.extract_tool_call_jsons(text) == [(WEATHER, True), ('{"name": "f", "arg', False)]
    assert lab.StreamingToolParser.extract_tool_call_jsons(f"<tool_call>{WEATHER}\n</tool") == [(WEATHER, True)], \
        "a partial end tag is not JSON; valid JSON without its end tag is complete"
    assert lab.StreamingToolParser.extract_tool_call_jsons("<tool_call>  ") == [("", False)]


def test_a_call_without_a_name_blocks_the_calls_after_it(lab):
    text = f'<tool_call>{{"nme": "f", "arguments": {{}}}}</tool_call><tool_call>{WEATHER}</tool_call>'
    content, calls = lab.stream_parse(list(text), ids())
    assert (content, calls) == ("", []), "call 1 must not be sent while call 0 has no name (upstream breaks the loop)"


def test_second_call_gets_index_one(lab):
    content, calls = lab.stream_parse([OUTPUTS["two-calls"]], ids())
    assert [c.name for c in calls] == ["get_weather", "get_time"] and [c.id for c in calls] == ["call-0", "call-1"]


# -- chunking invariance ------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in OUTPUTS if n != "open-at-end"])
def test_streaming_equals_batch_at_every_split_position(lab, name):
    text = OUTPUTS[name]
    want = batch_summary(lab, text)
    for cut in range(len(text) + 1):
        got = summary(*lab.stream_parse([text[:cut], text[cut:]], ids()))
        assert got == want, f"split at {cut}: {text[:cut]!r} | {text[cut:]!r}"


@pytest.mark.parametrize("name", [n for n in OUTPUTS if n != "open-at-end"])
def test_streaming_equals_batch_for_50_random_chunkings(lab, name):
    text, rng = OUTPUTS[name], random.Random(f"lab-16-01-{name}")
    want = batch_summary(lab, text)
    for chunks in chunkings(text, rng, 50):
        assert summary(*lab.stream_parse(chunks, ids())) == want, f"chunks: {chunks}"


def test_one_character_at_a_time_matches_batch(lab):
    for name, text in OUTPUTS.items():
        if name != "open-at-end":
            assert summary(*lab.stream_parse(list(text), ids())) == batch_summary(lab, text), name


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_deltas_match_mini_vllm_parser_delta_for_delta(lab, name):
    text, rng = OUTPUTS[name], random.Random(name)
    for chunks in [list(text), *chunkings(text, rng, 10)]:
        mine, ref = lab.StreamingToolParser(ids()), Hermes2ProToolParser(ids())
        for chunk in chunks:
            assert mine.feed(chunk) == ref.extract_tool_calls_streaming(chunk), f"after {ref.current_text!r}"
        assert mine.finish() == ref.finish()


def test_a_truncated_call_streams_partially_but_batch_falls_back(lab):
    text = 'x <tool_call>{"name": "f", "arguments": {"a": 1'
    content, calls = lab.stream_parse(list(text), ids())
    assert (content, [(c.name, c.arguments) for c in calls]) == ("x ", [("f", '{"a": 1')])
    assert lab.extract_tool_calls(text, ids()).tools_called is False, \
        "the two paths disagree on a cut-off call at the pin: finish_reason 'length' is the client's warning"


def _pin_source_parser_cls():
    """The pin's Hermes2ProToolParser, executed from upstream/ with its imports replaced:
    stand-ins for the pydantic protocol classes, the pin's own utils functions, and the
    four attributes ToolParser.__init__ sets (vllm/tool_parsers/abstract_tool_parser.py)."""
    import dataclasses
    import logging
    import re
    import uuid
    from collections.abc import Sequence

    from course.pin_source import exec_without_imports

    def model(cls):
        cls = dataclasses.dataclass(cls)
        cls.model_dump = lambda self, exclude_none=False: {
            k: v for k, v in dataclasses.asdict(self).items() if not (exclude_none and v is None)}
        return cls

    @model
    class DeltaFunctionCall:
        name: str | None = None
        arguments: str | None = None

    @model
    class DeltaToolCall:
        index: int
        id: str | None = None
        type: str | None = None
        function: object = None

        def __post_init__(self):  # pydantic coerces the dict the parser passes
            if isinstance(self.function, dict):
                self.function = DeltaFunctionCall(**self.function)

    @model
    class DeltaMessage:
        content: str | None = None
        tool_calls: list = dataclasses.field(default_factory=list)

    @model
    class FunctionCall:
        name: str
        arguments: str

    @model
    class ToolCall:
        function: FunctionCall
        type: str = "function"
        id: str = dataclasses.field(default_factory=lambda: f"chatcmpl-tool-{uuid.uuid4().hex[:16]}")

    @model
    class ExtractedToolCallInformation:
        tools_called: bool
        tool_calls: list
        content: str | None = None

    class ToolParser:
        def __init__(self, tokenizer, tools=None):
            self.prev_tool_call_arr, self.current_tool_id = [], -1
            self.current_tool_name_sent, self.streamed_args_for_tool = False, []
            self.model_tokenizer = tokenizer

    utils = exec_without_imports("vllm/tool_parsers/utils.py", {"json": json, "JSONDecodeError": json.JSONDecodeError},
                                 only=("partial_tag_overlap", "is_complete_json"))
    provided = dict(json=json, re=re, Sequence=Sequence, make_tool_call_id=lambda: "chatcmpl-tool-0",
                    ChatCompletionRequest=object, ResponsesRequest=object, TokenizerLike=object, Tool=object,
                    DeltaFunctionCall=DeltaFunctionCall, DeltaMessage=DeltaMessage, DeltaToolCall=DeltaToolCall,
                    ExtractedToolCallInformation=ExtractedToolCallInformation, FunctionCall=FunctionCall,
                    ToolCall=ToolCall, ToolParser=ToolParser, init_logger=logging.getLogger,
                    is_mistral_tokenizer=lambda tokenizer: False,
                    partial_tag_overlap=utils["partial_tag_overlap"], is_complete_json=utils["is_complete_json"])
    return exec_without_imports("vllm/tool_parsers/hermes_tool_parser.py", provided)["Hermes2ProToolParser"]


def _upstream_parser_cls():
    """vLLM's own parser where vllm imports; else the pin's source from upstream/."""
    if importlib.util.find_spec("vllm") is not None:
        try:
            from vllm.tool_parsers.hermes_tool_parser import Hermes2ProToolParser as Upstream
            return Upstream
        except ImportError:
            pass
    from course.pin_source import upstream_available

    if not upstream_available():
        pytest.skip("neither vllm nor upstream/ is here: python tools/fetch_upstream.py upstream")
    return _pin_source_parser_cls()


def _norm(msg):
    """A delta as (content, [(index, has id, name, arguments)]), from either parser."""
    if msg is None:
        return None
    calls = []
    for d in msg.tool_calls:
        fn = getattr(d, "function", None)
        name = fn.name if fn is not None else getattr(d, "name", None)
        args = fn.arguments if fn is not None else getattr(d, "arguments", None)
        calls.append((d.index, d.id is not None, name, args))
    return msg.content, calls


@pytest.mark.upstream
@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_matches_the_pinned_hermes_parser_on_the_same_streams(lab, name):
    Upstream = _upstream_parser_cls()
    text, rng = OUTPUTS[name], random.Random(f"upstream-{name}")
    if name != "open-at-end":
        up = Upstream(object()).extract_tool_calls(text, None)
        mine = lab.extract_tool_calls(text, ids())
        assert (mine.tools_called, mine.content) == (up.tools_called, up.content)
        assert [(c.name, c.arguments) for c in mine.tool_calls] == \
            [(c.function.name, c.function.arguments) for c in up.tool_calls]
    for chunks in [list(text), *chunkings(text, rng, 10)]:
        up, mine, current = Upstream(object()), lab.StreamingToolParser(ids()), ""
        for chunk in chunks:
            previous, current = current, current + chunk
            want = up.extract_tool_calls_streaming(previous, current, chunk, [], [], [], None)
            assert _norm(mine.feed(chunk)) == _norm(want), f"after {current!r}"
