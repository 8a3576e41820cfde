"""Spec of lab 12-01: pattern -> FSM -> token mask, and the guarantee it buys."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.lab_support.phase_12 import HEX_EOS, HEX_VOCAB, preferring, random_model, upstream_python, xgrammar_masks

HEX = "0x[0-9a-f]+"
HEXCHARS = frozenset("0123456789abcdef")


def ids(vocab, mask):
    return [vocab[t] for t in np.flatnonzero(mask)]


def test_parse_atoms_hex_pattern(lab):
    assert lab.parse_atoms(HEX) == [lab.Atom(frozenset("0")), lab.Atom(frozenset("x")), lab.Atom(HEXCHARS, True)], \
        "two literals, then one class with + (TODO 1)"


def test_parse_atoms_escapes_ranges_and_plus_on_a_literal(lab):
    assert lab.parse_atoms(r"a\.b+[x-z_]") == [
        lab.Atom(frozenset("a")), lab.Atom(frozenset(".")), lab.Atom(frozenset("b"), True),
        lab.Atom(frozenset("xyz_"))], "\\. is a literal dot; x-z is a range; + binds to the atom before it"


@pytest.mark.parametrize("bad", ["+a", "a++", "[ab", "a\\"])
def test_parse_atoms_refuses_malformed_patterns(lab, bad):
    with pytest.raises(ValueError):
        lab.parse_atoms(bad)


def test_compile_gives_one_state_per_atom_and_a_self_loop_for_plus(lab):
    fsm = lab.compile_pattern(lab.parse_atoms("ab+c"))
    assert fsm.transitions == {(0, "a"): 1, (1, "b"): 2, (2, "b"): 2, (2, "c"): 3}, \
        "state i --atom i--> i+1, and + loops on the state after its atom (TODO 2)"
    assert fsm.accepting == frozenset({3}) and fsm.num_states == 4


def test_ambiguous_plus_is_refused(lab):
    with pytest.raises(ValueError):
        lab.compile_pattern(lab.parse_atoms("[0-9]+[0-5]"))
    lab.compile_pattern(lab.parse_atoms("[0-9]+[a-f]"))  # disjoint: fine


def test_advance_walks_characters_and_dies_mid_token(lab):
    fsm = lab.compile_pattern(lab.parse_atoms(HEX))
    assert lab.advance(fsm, 0, "0x1f") == 3 and lab.advance(fsm, 0, "0x") == 2
    assert lab.advance(fsm, 2, "") == 2, "an empty walk stays put"
    assert lab.advance(fsm, 0, "1x") is None, "'1' has no transition from the start (TODO 3)"
    assert lab.advance(fsm, 3, "f0x") is None, "alive for two characters, dead at the third"


def test_mask_is_exactly_the_survivors(lab):
    fsm = lab.compile_pattern(lab.parse_atoms(HEX))
    assert ids(HEX_VOCAB, lab.allowed_tokens(fsm, 0, HEX_VOCAB, HEX_EOS)) == ["0", "0x"], \
        "'0x' crosses two atoms in one token and is legal (TODO 4)"
    after_x = ids(HEX_VOCAB, lab.allowed_tokens(fsm, 2, HEX_VOCAB, HEX_EOS))
    assert after_x == ["0", "1", "7", "9", "a", "f", "ff", "ff1"], "'x0' and '1x' die on their x"
    assert ids(HEX_VOCAB, lab.allowed_tokens(fsm, 3, HEX_VOCAB, HEX_EOS)) == after_x + ["<eos>"]


def test_eos_only_when_accepting_and_special_tokens_never(lab):
    fsm = lab.compile_pattern(lab.parse_atoms("a+"))
    for state, accepting in ((0, False), (1, True)):
        mask = lab.allowed_tokens(fsm, state, ["a", None, "<eos>"], 2)
        assert mask.dtype == bool and mask.tolist() == [True, False, accepting], \
            "EOS is legal iff the state accepts; a None (special) token is never legal"


def test_pack_bitmask_uses_xgrammars_layout(lab):
    assert lab.pack_bitmask(np.array([True] + [False] * 6 + [True] + [False] * 12)).tolist() == [129]
    m = np.zeros(40, dtype=bool)
    m[33] = True
    assert lab.pack_bitmask(m).tolist() == [0, 2], "token 33 is bit 1 of word 1 (TODO 5)"
    m = np.zeros(32, dtype=bool)
    m[31] = True
    out = lab.pack_bitmask(m)
    assert out.dtype == np.int32 and out.tolist() == [-2**31], "bit 31 is the int32 sign bit"
    assert lab.pack_bitmask(np.ones(64, dtype=bool)).tolist() == [-1, -1], "all allowed = -1, as upstream's full mask"


def test_constrained_output_always_matches_a_garbage_loving_model(lab):
    fsm = lab.compile_pattern(lab.parse_atoms(HEX))
    garbage = preferring(HEX_VOCAB, ["q", "@", "zz", "<eos>", "1x"])
    token_ids, text, reason = lab.constrained_generate(fsm, HEX_VOCAB, HEX_EOS, garbage, max_tokens=6)
    assert (text, reason) == ("0x0", "stop"), "the mask removes q, @, zz; EOS wins once the state accepts (TODO 6)"
    assert token_ids == [0, 6, 0, HEX_EOS]
    assert re.fullmatch(HEX, text)


def test_fuzzed_models_never_violate(lab):
    fsm = lab.compile_pattern(lab.parse_atoms(HEX))
    live_prefix = re.compile(r"(0(x[0-9a-f]*)?)?")
    stops = 0
    for seed in range(50):
        token_ids, text, reason = lab.constrained_generate(fsm, HEX_VOCAB, HEX_EOS, random_model(len(HEX_VOCAB), seed), 12)
        assert live_prefix.fullmatch(text), f"seed {seed}: {text!r} left the pattern"
        if reason == "stop":
            stops += 1
            assert re.fullmatch(HEX, text) and token_ids[-1] == HEX_EOS
        else:
            assert reason == "length" and len(token_ids) == 12
    assert stops == 35, f"35 of the 50 seeded models pick EOS within 12 tokens; got {stops} (is EOS masked right?)"


def test_truncation_caveat_is_real(lab):
    fsm = lab.compile_pattern(lab.parse_atoms(r"[0-9]+\.[0-9]"))
    token_ids, text, reason = lab.constrained_generate(fsm, HEX_VOCAB, HEX_EOS, preferring(HEX_VOCAB, ["9", "."]), 5)
    assert (text, reason) == ("99999", "length"), "a digit-loving model never reaches the '.'"
    assert len(token_ids) == 5 and not re.fullmatch(r"[0-9]+\.[0-9]", text), "a valid prefix, not a match"
    _, done, reason = lab.constrained_generate(fsm, HEX_VOCAB, HEX_EOS, preferring(HEX_VOCAB, ["<eos>", ".", "9"]), 5)
    assert (done, reason) == ("9.9", "stop")


@given(st.text(alphabet="0x9af.-", max_size=7))
def test_fsm_accepts_exactly_what_re_fullmatch_accepts(lab, text):
    for pattern in (HEX, r"[0-9]+\.[0-9]", "-+x[a-f]+"):
        fsm = lab.compile_pattern(lab.parse_atoms(pattern))
        state = lab.advance(fsm, 0, text)
        assert (state in fsm.accepting) == bool(re.fullmatch(pattern, text)), (pattern, text)


def test_mask_matches_mini_vllms_grammar_engine(lab):
    from mini_vllm.structured_output import CompiledGrammar, compile_regex

    token_bytes = [t.encode() if t and t != "<eos>" else None for t in HEX_VOCAB]
    engine = CompiledGrammar(compile_regex(HEX), token_bytes, HEX_EOS)
    fsm = lab.compile_pattern(lab.parse_atoms(HEX))
    state, estate = 0, 0
    for token in [None, 7, 9, 4]:  # start, "0x", "ff", "a"
        if token is not None:
            state, estate = lab.advance(fsm, state, HEX_VOCAB[token]), engine.next_state(estate, token)
        assert lab.allowed_tokens(fsm, state, HEX_VOCAB, HEX_EOS).tolist() == engine.token_mask(estate).tolist()


@pytest.mark.upstream
def test_mask_matches_xgrammar(lab):
    exe, reason = upstream_python()
    if exe is None:
        pytest.skip(reason)
    walk = [7, 9, 4]  # "0x", "ff", "a"
    masks = xgrammar_masks(exe, HEX, HEX_VOCAB, HEX_EOS, walk)
    fsm = lab.compile_pattern(lab.parse_atoms(HEX))
    state = 0
    for step, token in enumerate([None] + walk):
        if token is not None:
            state = lab.advance(fsm, state, HEX_VOCAB[token])
        ours = lab.allowed_tokens(fsm, state, HEX_VOCAB, HEX_EOS).tolist()
        assert ours == masks[step], f"step {step}: ours {ids(HEX_VOCAB, ours)} vs xgrammar {ids(HEX_VOCAB, masks[step])}"
