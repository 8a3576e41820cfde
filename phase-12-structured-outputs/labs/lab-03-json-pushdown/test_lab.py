"""Spec of lab 12-03: a pushdown machine for a JSON subset, checked against json.loads."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.lab_support.phase_12 import JSON_EOS, JSON_VOCAB, nesting_model, preferring, random_model

DIGITS = set("0123456789")


def recognize(lab, text):
    m = lab.JsonMachine()
    try:
        for ch in text:
            m.feed(ch)
    except ValueError:
        return False
    return m.accepting()


def fed(lab, text):
    m = lab.JsonMachine()
    for ch in text:
        m.feed(ch)
    return m


VALID = ["0", "7", "120", "{}", '{"a":1}', '{"ab":{"c":0},"b":{}}', '{"a":10,"b":0,"c":{"a":{}}}']
INVALID = ["", "01", "00", "{", "}", "{}}", '{"a":}', '{"a":1,}', "{,}", '{"":1}', '{"a"1}', '{"a":01}', "{}0",
           '{"a":1', '{"d":1}']


@pytest.mark.parametrize("text", VALID)
def test_recognizes_valid_json(lab, text):
    assert recognize(lab, text), f"{text!r} is in the subset (TODO 1-3)"
    json.loads(text)


@pytest.mark.parametrize("text", INVALID)
def test_rejects_invalid_json(lab, text):
    assert not recognize(lab, text), f"{text!r} must be refused or left incomplete"


def test_leading_zero_is_a_complete_int(lab):
    m = fed(lab, "0")
    assert m.allowed() == set() and m.accepting(), "JSON ints are 0 | [1-9][0-9]*: nothing may follow a top-level 0"
    assert fed(lab, '{"a":0').allowed() == {",", "}"}, "inside an object, 0 ends at , or }"
    assert fed(lab, "1").allowed() == DIGITS and fed(lab, "1").accepting()


def test_illegal_feed_raises_and_changes_nothing(lab):
    m = fed(lab, '{"a":1')
    before = (m.mode, m.depth)
    with pytest.raises(ValueError):
        m.feed(":")
    assert (m.mode, m.depth) == before, "a refused character must not move the machine (TODO 2)"
    m.feed("}")
    assert m.mode == "done" and m.depth == 0


def test_allowed_sets_follow_the_grammar(lab):
    assert lab.JsonMachine().allowed() == {"{"} | DIGITS
    assert fed(lab, "{").allowed() == {'"', "}"}
    assert fed(lab, '{"a":1,').allowed() == {'"'}, "after a comma a key must follow: no trailing comma"
    assert fed(lab, '{"').allowed() == set("abc"), "a key has at least one letter"
    assert fed(lab, '{"b').allowed() == set("abc") | {'"'}
    assert fed(lab, '{"b"').allowed() == {":"}
    assert fed(lab, '{"a":12').allowed() == DIGITS | {",", "}"}
    assert fed(lab, "{}").allowed() == set() and fed(lab, "{}").accepting()


def test_depth_is_the_stack(lab):
    m = fed(lab, '{"a":' * 8)
    assert m.depth == 8 and m.mode == "value"
    m.feed("0")
    for d in range(7, 0, -1):
        m.feed("}")
        assert (m.mode, m.depth) == ("comma_or_close", d), "closing an inner object resumes the parent"
    m.feed("}")
    assert (m.mode, m.depth) == ("done", 0) and m.accepting()


def test_token_mask_is_stack_aware(lab):
    def pieces(m):
        return [JSON_VOCAB[t] for t in np.flatnonzero(lab.token_mask(m, JSON_VOCAB, JSON_EOS))]

    assert pieces(lab.JsonMachine()) == ["{"] + list("0123456789") + ['{"', "10"], \
        "'01' dies on its second character; '{\"' crosses two modes (TODO 4)"
    inner = pieces(fed(lab, '{"a":{"b":0'))
    outer = pieces(fed(lab, '{"a":0'))
    assert inner == ["}", ",", "},"], "'},' closes the inner object and continues the outer one"
    assert outer == ["}", ","], "the same mode one level up: '},' would close the last object and then need more"
    assert pieces(fed(lab, "7")) == list("0123456789") + ["01", "10", "<eos>"]
    assert pieces(fed(lab, '{"a"')) == [":"] and pieces(fed(lab, '{"a')) == ['"', "a", "b", "c", '":']


def test_nesting_model_reaches_depth_8_and_parses(lab):
    ids, text, reason, m = lab.constrained_generate(JSON_VOCAB, JSON_EOS, nesting_model(JSON_VOCAB, 8), 80)
    assert reason == "stop" and ids[-1] == JSON_EOS and m.mode == "done", "(TODO 5)"
    assert text == '{"a":' * 8 + "0" + "}" * 8
    doc = json.loads(text)
    for _ in range(8):
        doc = doc["a"]
    assert doc == 0


def test_leading_zero_model_cannot_write_01(lab):
    ids, text, reason, _ = lab.constrained_generate(JSON_VOCAB, JSON_EOS, preferring(JSON_VOCAB, ["0", "1", "<eos>"]), 5)
    assert (text, reason, ids) == ("0", "stop", [5, JSON_EOS]), "after a top-level 0 only EOS is legal"


def test_fuzzed_models_parse_or_truncate_live(lab):
    stops = 0
    for seed in range(50):
        ids, text, reason, m = lab.constrained_generate(JSON_VOCAB, JSON_EOS, random_model(len(JSON_VOCAB), seed), 40)
        if reason == "stop":
            stops += 1
            json.loads(text)  # the independent oracle
            assert recognize(lab, text)
        else:
            assert reason == "length" and len(ids) == 40
            assert fed(lab, text).allowed() or fed(lab, text).accepting(), f"seed {seed}: {text!r} is a dead prefix"
    assert stops == 49, f"49 of 50 seeded random models finish within 40 tokens; got {stops}"


def test_truncation_caveat_brace_lover_never_closes(lab):
    lover = preferring(JSON_VOCAB, ["{", '"', "a", ":", ",", "0"])
    ids, text, reason, m = lab.constrained_generate(JSON_VOCAB, JSON_EOS, lover, 30)
    assert reason == "length" and len(ids) == 30
    assert text == '{"a":' * 6 and m.depth == 6, "every value slot opens another object"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


@given(st.text(alphabet='{}":,01a', max_size=12))
def test_whatever_the_machine_accepts_json_loads_accepts(lab, text):
    if recognize(lab, text):
        json.loads(text)
