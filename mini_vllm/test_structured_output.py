"""Structured outputs inside the real engine loop: whatever the model prefers, the text
matches the grammar; a length cap leaves a valid prefix; bad params name their field."""

import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mini_vllm.engine import LLM, LLMEngine
from mini_vllm.model import get_model
from mini_vllm.request import RequestStatus
from mini_vllm.sampler import SamplingParams
from mini_vllm.structured_output import (
    StructuredOutputsParams,
    allocate_token_bitmask,
    compile_regex,
    json_schema_to_regex,
    pack_bitmask,
    unpack_bitmask,
)

PHONE = r"[0-9]{3}-[0-9]{4}"
SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 6},
    "ok": {"type": "boolean"},
    "size": {"enum": ["S", "M", "L"]},
    "tags": {"type": "array", "items": {"enum": [1, 2, 3]}, "maxItems": 3},
}, "required": ["name", "ok", "size", "tags"]}
PROMPTS = ["give me a phone number", "hello", "{", "the answer is"]


class Adversarial:
    """The tiny model, plus a bonus of 50 on every token of ``hated`` text: the model
    prefers exactly what the grammar forbids."""

    def __init__(self, hated: str) -> None:
        self.inner = get_model("tiny")
        self.config = self.inner.config
        self.bonus = np.zeros(self.config.vocab_size)
        self.bonus[list(hated.encode())] = 50.0

    def make_kv_caches(self, *args):
        return self.inner.make_kv_caches(*args)

    def forward(self, *args, **kwargs):
        return self.inner.forward(*args) + self.bonus


def generate(params, prompts=PROMPTS, seed=0, loaded_model=None):
    llm = LLM(model="tiny", seed=seed, loaded_model=loaded_model)
    outs = llm.generate(prompts, params)
    assert llm.llm_engine.engine_core.scheduler.requests == {}
    return outs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("temperature", [0.0, 1.0, 2.0])
def test_regex_output_always_matches(seed, temperature):
    so = StructuredOutputsParams(regex=PHONE)
    for out in generate(SamplingParams(temperature=temperature, max_tokens=20, structured_outputs=so), seed=seed):
        assert re.fullmatch(PHONE, out.text), f"{out.text!r} does not match {PHONE}"
        assert out.finish_reason == "stop", "the grammar's only way out is EOS once 8 characters are placed"
        assert len(out.output_token_ids) == 9 and out.output_token_ids[-1] == 256


def test_adversarial_model_still_matches():
    so = StructuredOutputsParams(regex=PHONE)
    free = generate(SamplingParams(temperature=0.0, max_tokens=9), loaded_model=Adversarial("abc!"))
    assert all(set(o.text) <= set("abc!") for o in free), "unconstrained, the model emits what it prefers"
    for out in generate(SamplingParams(temperature=0.0, max_tokens=20, structured_outputs=so),
                        loaded_model=Adversarial("abc!")):
        assert re.fullmatch(PHONE, out.text), out.text


def test_choice_output_is_one_of_the_choices():
    choices = ["yes", "no", "maybe", "yesterday"]
    so = StructuredOutputsParams(choice=choices)
    seen = set()
    for seed in range(4):
        for out in generate(SamplingParams(temperature=1.0, max_tokens=12, structured_outputs=so), seed=seed):
            assert out.text in choices and out.finish_reason == "stop"
            seen.add(out.text)
    assert len(seen) >= 2, "the model still chooses among the legal answers"


def test_json_schema_output_parses_and_fits_the_schema():
    so = StructuredOutputsParams(json=SCHEMA)
    for seed in range(3):
        for out in generate(SamplingParams(temperature=1.0, max_tokens=80, structured_outputs=so), seed=seed):
            doc = json.loads(out.text)
            assert list(doc) == ["name", "ok", "size", "tags"]
            assert isinstance(doc["name"], str) and len(doc["name"]) <= 6
            assert isinstance(doc["ok"], bool) and doc["size"] in "SML"
            assert len(doc["tags"]) <= 3 and all(t in (1, 2, 3) for t in doc["tags"])
            assert out.finish_reason == "stop"


def test_max_tokens_truncation_leaves_a_valid_prefix_not_a_match():
    so = StructuredOutputsParams(regex=PHONE)
    prefix = re.compile(r"[0-9]{0,3}|[0-9]{3}-[0-9]{0,4}")
    for out in generate(SamplingParams(temperature=1.0, max_tokens=5, structured_outputs=so)):
        assert out.finish_reason == "length"
        assert prefix.fullmatch(out.text) and not re.fullmatch(PHONE, out.text), out.text
    for out in generate(SamplingParams(temperature=1.0, max_tokens=12, structured_outputs=StructuredOutputsParams(json=SCHEMA))):
        assert out.finish_reason == "length" and out.text.startswith('{"name":"')
        with pytest.raises(json.JSONDecodeError):
            json.loads(out.text)


def test_grammar_termination_finishes_the_request_under_ignore_eos():
    so = StructuredOutputsParams(choice=["yes", "no"])
    for out in generate(SamplingParams(max_tokens=30, ignore_eos=True, structured_outputs=so)):
        assert out.text in ("yes", "no") and out.finish_reason == "stop"
        assert out.status == RequestStatus.FINISHED_STOPPED and out.output_token_ids[-1] == 256


def test_unconstrained_neighbour_is_unchanged_by_a_constrained_one():
    free = SamplingParams(temperature=1.0, max_tokens=10, seed=7)
    alone = generate(free, prompts=["hello"])[0]
    mixed = generate([free, SamplingParams(max_tokens=10, structured_outputs=StructuredOutputsParams(regex=PHONE))],
                     prompts=["hello", "hello"])
    assert mixed[0].output_token_ids == alone.output_token_ids
    assert re.fullmatch(PHONE, mixed[1].text)


def test_requests_with_the_same_schema_share_one_compiled_grammar():
    engine = LLMEngine(model="tiny")
    for rid in ("a", "b"):
        engine.add_request("x", SamplingParams(structured_outputs=StructuredOutputsParams(json=dict(SCHEMA))), rid)
    reqs = engine.engine_core.scheduler.requests
    ga, gb = (reqs[r].structured_output_request.grammar for r in ("a", "b"))
    assert ga is not gb and ga.compiled is gb.compiled
    assert len(engine.engine_core.structured_output_manager.backend.cache) == 1


@pytest.mark.parametrize("kwargs, field", [
    (dict(regex="[0-9"), "structured_outputs.regex"),
    (dict(regex="a{3,1}"), "structured_outputs.regex"),
    (dict(choice=[]), "structured_outputs.choice"),
    (dict(choice="yes"), "structured_outputs.choice"),
    (dict(json={"type": "object", "properties": {"a": {"$ref": "#"}}}), "structured_outputs.json"),
    (dict(json="{not json"), "structured_outputs.json"),
    (dict(json={"type": "object", "required": ["a"]}), "structured_outputs.json"),
    (dict(grammar="root ::= 'a'"), "structured_outputs.grammar"),
    (dict(json_object=True), "structured_outputs.json_object"),
    (dict(regex="a", choice=["a"]), "exactly one"),
    (dict(), "exactly one"),
])
def test_bad_grammar_params_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        StructuredOutputsParams(**kwargs)


def test_sampling_params_refuses_a_non_params_constraint():
    with pytest.raises(ValueError, match="structured_outputs"):
        SamplingParams(structured_outputs={"regex": "a"})


def test_bitmask_layout_is_xgrammars():
    allowed = np.zeros(70, dtype=bool)
    allowed[[0, 33, 69]] = True
    words = pack_bitmask(allowed)
    assert words.dtype == np.int32 and words.tolist() == [1, 2, 32]
    assert (unpack_bitmask(words, 70) == allowed).all()
    assert allocate_token_bitmask(2, 257).shape == (2, 9) and (allocate_token_bitmask(1, 40) == -1).all()


def test_rollback_and_validate_restore_the_exact_mask():
    engine = LLMEngine(model="tiny")
    engine.add_request("x", SamplingParams(structured_outputs=StructuredOutputsParams(regex=PHONE)), "r")
    grammar = engine.engine_core.scheduler.requests["r"].structured_output_request.grammar
    start = grammar.allowed_tokens().copy()
    assert grammar.validate_tokens(list(b"12a")) == list(b"12") and (grammar.allowed_tokens() == start).all()
    assert grammar.accept_tokens("r", list(b"123-"))
    assert np.flatnonzero(grammar.allowed_tokens()).tolist() == list(range(48, 58))
    grammar.rollback(4)
    assert (grammar.allowed_tokens() == start).all() and grammar.num_processed_tokens == 0
    assert not grammar.accept_tokens("r", [256]), "EOS is illegal before the pattern is complete"


PATTERNS = [r"(ab|a)*b?", r"[0-1]{2,3}-?", r"a+(-b)*|0", json_schema_to_regex({"type": "integer"})]
DFAS = [compile_regex(p) for p in PATTERNS]


@given(st.text(alphabet="ab-01", max_size=8))
def test_dfa_agrees_with_re_fullmatch(text):
    for pattern, dfa in zip(PATTERNS, DFAS):
        state = dfa.walk(0, text.encode())
        assert (state >= 0 and bool(dfa.accepting[state])) == bool(re.fullmatch(pattern, text)), (pattern, text)


def test_dfa_sizes_and_bitmask_bytes_quoted_in_the_phase_guide():
    assert compile_regex(PHONE).num_states == 9, "8 characters placed = 9 states"
    assert compile_regex("yes|no|maybe").num_states == 11
    sheet = {"type": "object", "additionalProperties": False, "required": ["name", "class", "alive"], "properties": {
        "name": {"type": "string", "maxLength": 12}, "class": {"enum": ["wizard", "rogue", "bard"]},
        "alive": {"type": "boolean"}}}
    assert compile_regex(json_schema_to_regex(sheet)).num_states == 94
    llama3 = allocate_token_bitmask(256, 128_256)
    assert llama3.shape == (256, 4008) and llama3.nbytes == 4_104_192, "256 rows x 4,008 int32 words"


def test_numbers_quoted_in_the_phase_exercises():
    from mini_vllm.structured_output import CompiledGrammar

    vocab = [b"a", b"b", b"c", b"ac", b"bc", b"cc", b"ca", None]
    g = CompiledGrammar(compile_regex("[ab]c+"), vocab, eos_token_id=7)
    legal = [lambda s: [t for t in range(8) if g.next_state(s, t) >= 0]][0]
    after_a, after_ac = g.dfa.walk(0, b"a"), g.dfa.walk(0, b"ac")
    assert (legal(0), legal(after_a), legal(after_ac)) == ([0, 1, 3, 4], [2, 5], [2, 5, 7])
    mask = np.zeros(50, dtype=bool)
    mask[[0, 5, 31, 32, 40]] = True
    assert pack_bitmask(mask).tolist() == [-2147483615, 257]
    assert allocate_token_bitmask(256 * (1 + 4), 32_000).nbytes == 5_120_000
    assert round(10_000 * 0.200 / 60) == 33, "exercise 14: CPU-seconds of compiling per wall-second"


def test_choices_are_literal_text_not_regex():
    from mini_vllm.structured_output import get_structured_output_regex

    dfa = compile_regex(get_structured_output_regex(StructuredOutputsParams(choice=["a.b", "1+1", "(x)"])))
    accepts = lambda text: (s := dfa.walk(0, text.encode())) >= 0 and bool(dfa.accepting[s])  # noqa: E731
    assert all(accepts(t) for t in ("a.b", "1+1", "(x)"))
    assert not any(accepts(t) for t in ("axb", "11", "111", "x"))


def test_a_token_into_a_dead_end_is_never_allowed():
    from mini_vllm.structured_output import CompiledGrammar

    # "b" followed by an empty class can never finish: the DFA drops that branch entirely.
    g = CompiledGrammar(compile_regex("a|b[^ -~]"), [b"a", b"b", None], eos_token_id=2)
    assert g.token_mask(0).tolist() == [True, False, False]


def test_rollback_of_eos_unterminates_the_grammar():
    engine = LLMEngine(model="tiny")
    engine.add_request("x", SamplingParams(structured_outputs=StructuredOutputsParams(choice=["ok"])), "r")
    grammar = engine.engine_core.scheduler.requests["r"].structured_output_request.grammar
    assert grammar.accept_tokens("r", [111, 107, 256]) and grammar.is_terminated()
    assert not grammar.allowed_tokens().any() and not grammar.accept_tokens("r", [256])
    grammar.rollback(1)
    assert not grammar.is_terminated() and np.flatnonzero(grammar.allowed_tokens()).tolist() == [256]
