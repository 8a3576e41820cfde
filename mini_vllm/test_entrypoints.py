"""The server's plain-Python parts: incremental detokenizer, Hermes tool parser, chat template.

No fastapi needed; the HTTP tests are in test_openai_server.py.
"""
from __future__ import annotations

import json
import random

import pytest

from mini_vllm import ByteTokenizer
from mini_vllm.detokenizer import IncrementalDetokenizer, ToySentencePieceTokenizer, detokenize_incrementally
from mini_vllm.entrypoints.chat_template import ChatTemplate, render_simple
from mini_vllm.entrypoints.tool_parser import Hermes2ProToolParser, partial_tag_overlap

TEXT = "naïve café — 你好 🚀🇫🇷!"


def stream(detok, ids):
    return [detok.decode_next(i) for i in ids]


def test_byte_stream_never_emits_a_broken_character():
    tok = ByteTokenizer()
    pieces = stream(IncrementalDetokenizer(tok, tok.encode("hi ")), tok.encode(TEXT))
    assert "".join(pieces) == TEXT and not any("\ufffd" in p for p in pieces)


def test_rocket_is_three_silences_then_the_rocket():
    tok = ByteTokenizer()
    assert stream(IncrementalDetokenizer(tok), tok.encode("🚀")) == ["", "", "", "🚀"]


def test_truncated_character_is_flushed_as_replacement_at_finish():
    tok = ByteTokenizer()
    d = IncrementalDetokenizer(tok)
    assert stream(d, tok.encode("a🚀")[:-1]) == ["a", "", "", ""]
    assert d.finish() == "\ufffd" and d.output_text == tok.decode(tok.encode("a🚀")[:-1])


def test_sentencepiece_spaces_survive_thanks_to_the_prefix_offset():
    tok = ToySentencePieceTokenizer()
    ids = tok.encode("Hello world the cache is paged")
    assert [tok.decode([i]) for i in ids][:2] == ["Hello", "world"], "decoded alone, a piece loses its space"
    d = IncrementalDetokenizer(tok)
    assert "".join(stream(d, ids)) == "Hello world the cache is paged"


def test_prompt_context_keeps_the_first_output_space():
    tok = ToySentencePieceTokenizer()
    prompt, out = tok.encode("Hello"), tok.encode("Hello world")[1:]
    assert stream(IncrementalDetokenizer(tok, prompt), out) == [" world"]


def test_detokenize_incrementally_holds_offsets_while_incomplete():
    tok = ByteTokenizer()
    ids = tok.encode("a") + tok.encode("é")[:1]
    assert detokenize_incrementally(tok, ids, 0, 1) == ("", 0, 1)
    assert detokenize_incrementally(tok, ids + tok.encode("é")[1:], 0, 1) == ("é", 1, 3)


@pytest.mark.parametrize("text, tag, n", [("Sure <tool_", "<tool_call>", 6), ("x<", "<tool_call>", 1),
                                          ("<tool_call>", "<tool_call>", 0), ("abc", "<tool_call>", 0)])
def test_partial_tag_overlap(text, tag, n):
    assert partial_tag_overlap(text, tag) == n


CALLS = ('I will check. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
         '<tool_call>{"name": "get_time", "arguments": {"tz": "CET", "fmt": "<b>"}}</tool_call>')


def collect(parser, chunks):
    content, names, args = "", {}, {}
    for c in chunks:
        for msg in (parser.extract_tool_calls_streaming(c),):
            if msg is None:
                continue
            content += msg.content or ""
            for d in msg.tool_calls:
                if d.name:
                    names[d.index] = d.name
                args[d.index] = args.get(d.index, "") + (d.arguments or "")
    end = parser.finish()
    content += (end.content or "") if end else ""
    return content, names, args


def test_batch_parse_matches_upstream_semantics():
    info = Hermes2ProToolParser().extract_tool_calls(CALLS)
    assert info.tools_called and info.content == "I will check. "
    assert [(c.name, json.loads(c.arguments)) for c in info.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET", "fmt": "<b>"})]


def test_malformed_json_falls_back_to_plain_content():
    text = 'x <tool_call>{"name": "f", "arguments": {</tool_call>'
    info = Hermes2ProToolParser().extract_tool_calls(text)
    assert (info.tools_called, info.tool_calls, info.content) == (False, [], text)


@pytest.mark.parametrize("seed", range(20))
def test_streaming_equals_batch_for_random_chunkings(seed):
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(CALLS)), rng.randint(1, 30)))
    chunks = [CALLS[a:b] for a, b in zip([0] + cuts, cuts + [len(CALLS)])]
    content, names, args = collect(Hermes2ProToolParser(), chunks)
    batch = Hermes2ProToolParser().extract_tool_calls(CALLS)
    assert content == batch.content
    assert [names[i] for i in sorted(names)] == [c.name for c in batch.tool_calls]
    assert [json.loads(args[i]) for i in sorted(args)] == [json.loads(c.arguments) for c in batch.tool_calls]


def test_false_alarm_is_released_and_end_of_stream_flushes():
    content, names, _ = collect(Hermes2ProToolParser(), ["a <to", "day> b <tool"])
    assert content == "a <today> b <tool" and names == {}


def test_simple_template_layout():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render_simple(msgs) == "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n"


def test_tools_and_tool_history_render_as_hermes_calls():
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    msgs = [{"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
            {"role": "tool", "content": "42", "tool_call_id": "1"}]
    out = render_simple(msgs, [tool])
    assert '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>' in out
    assert out.startswith("<|system|>\n# Tools\n") and out.endswith("<|tool|>\n42\n<|assistant|>\n")


def test_checkpoint_chat_template_is_used_when_jinja2_is_installed(tmp_path):
    pytest.importorskip("jinja2", reason="jinja2 not installed: the simple template is used instead")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}"
                                             "{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"}))
    template = ChatTemplate.from_model_dir(tmp_path)
    assert template.render([{"role": "user", "content": "hi"}]) == "<s>[user]hi[assistant]"
    assert "chat_template of" in template.source


def test_checkpoint_without_template_uses_the_simple_one(tmp_path):
    assert ChatTemplate.from_model_dir(tmp_path).render([{"role": "user", "content": "x"}]) == \
        "<|user|>\nx\n<|assistant|>\n"
