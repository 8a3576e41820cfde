"""Lab 12-01 (reference): a pattern -> a finite-state machine -> one token mask per step.

The pattern subset is a sequence of atoms: a literal character, an escaped character
(``\\.``), or a class ``[a-f0-9]``, each optionally followed by ``+``. The vocabularies
and fake models come from ``course.lab_support.phase_12``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from course.lab_support.phase_12 import HEX_EOS, HEX_VOCAB, hating, preferring, print_report  # noqa: F401 (given)


@dataclass(frozen=True)
class Atom:
    chars: frozenset[str]
    plus: bool = False


@dataclass
class FSM:
    """State ``i`` means "atoms ``0..i-1`` are matched"; ``transitions[(state, char)]`` is
    the next state; a missing key is the dead state."""

    transitions: dict[tuple[int, str], int]
    accepting: frozenset[int]
    num_states: int


def parse_atoms(pattern: str) -> list[Atom]:
    """``"0x[0-9a-f]+"`` -> ``[Atom({'0'}), Atom({'x'}), Atom(hex digits, plus=True)]``."""
    atoms: list[Atom] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "+":
            if not atoms or atoms[-1].plus:
                raise ValueError(f"'+' at position {i} has nothing to repeat")
            atoms[-1] = Atom(atoms[-1].chars, True)
            i += 1
            continue
        if c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"unclosed '[' at position {i}")
            body, chars, j = pattern[i + 1 : end], set(), 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    chars |= {chr(k) for k in range(ord(body[j]), ord(body[j + 2]) + 1)}
                    j += 3
                else:
                    chars.add(body[j])
                    j += 1
            if not chars:
                raise ValueError(f"empty class at position {i}")
            atoms.append(Atom(frozenset(chars)))
            i = end + 1
            continue
        if c == "\\":
            if i + 1 == len(pattern):
                raise ValueError("pattern ends with a lone backslash")
            c, i = pattern[i + 1], i + 1
        atoms.append(Atom(frozenset(c)))
        i += 1
    return atoms


def compile_pattern(atoms: list[Atom]) -> FSM:
    """One state per matched-atom count; ``+`` adds a self-loop on the state after its atom."""
    transitions: dict[tuple[int, str], int] = {}
    for i, atom in enumerate(atoms):
        if atom.plus and i + 1 < len(atoms) and atom.chars & atoms[i + 1].chars:
            raise ValueError(f"atom {i} repeats characters that atom {i + 1} also takes: "
                             "this machine would need to guess (a DFA needs subset construction)")
        for c in atom.chars:
            transitions[(i, c)] = i + 1
            if atom.plus:
                transitions[(i + 1, c)] = i + 1
    return FSM(transitions, frozenset({len(atoms)}), len(atoms) + 1)


def advance(fsm: FSM, state: int, text: str) -> int | None:
    """Walk ``text`` from ``state``; None as soon as a character has no transition."""
    for c in text:
        state = fsm.transitions.get((state, c))
        if state is None:
            return None
    return state


def allowed_tokens(fsm: FSM, state: int, vocab: list[str | None], eos_id: int) -> np.ndarray:
    """bool ``[len(vocab)]``: a token is allowed iff walking all its characters from
    ``state`` stays alive; EOS iff ``state`` accepts; a special token (None) never."""
    mask = np.zeros(len(vocab), dtype=bool)
    for t, text in enumerate(vocab):
        if t == eos_id:
            mask[t] = state in fsm.accepting
        elif text:
            mask[t] = advance(fsm, state, text) is not None
    return mask


def pack_bitmask(mask: np.ndarray) -> np.ndarray:
    """bool ``[vocab]`` -> int32 words, token ``t`` at bit ``t % 32`` of word ``t // 32``."""
    words = np.zeros((len(mask) + 31) // 32, dtype=np.int64)
    for t in np.flatnonzero(mask):
        words[t // 32] |= 1 << (int(t) % 32)
    return words.astype(np.uint32).view(np.int32)


def constrained_generate(fsm: FSM, vocab: list[str | None], eos_id: int, logits_fn, max_tokens: int):
    """Greedy decoding under the mask: ``(token_ids, text, finish_reason)``; the reason is
    "stop" when EOS is picked, "length" when ``max_tokens`` tokens were emitted first."""
    ids: list[int] = []
    state = 0
    while len(ids) < max_tokens:
        logits = np.array(logits_fn(ids), dtype=np.float64)
        logits[~allowed_tokens(fsm, state, vocab, eos_id)] = -np.inf
        token = int(np.argmax(logits))
        ids.append(token)
        if token == eos_id:
            return ids, "".join(vocab[t] for t in ids[:-1]), "stop"
        state = advance(fsm, state, vocab[token])
    return ids, "".join(vocab[t] for t in ids), "length"


def report(lab) -> dict:
    fsm = lab.compile_pattern(lab.parse_atoms("0x[0-9a-f]+"))
    start = lab.allowed_tokens(fsm, 0, HEX_VOCAB, HEX_EOS)
    garbage = lab.preferring(HEX_VOCAB, ["q", "@", "zz", "<eos>", "1x"])
    _, text, reason = lab.constrained_generate(fsm, HEX_VOCAB, HEX_EOS, garbage, max_tokens=6)
    digits = lab.compile_pattern(lab.parse_atoms("[0-9]+\\.[0-9]"))
    _, cut, cut_reason = lab.constrained_generate(digits, HEX_VOCAB, HEX_EOS, lab.preferring(HEX_VOCAB, ["9", "."]), 5)
    return {
        "states(0x[0-9a-f]+)": fsm.num_states,
        "allowed at start": [HEX_VOCAB[t] for t in np.flatnonzero(start)],
        "bitmask at start": lab.pack_bitmask(start).tolist(),
        "garbage-loving model emits": f"{text!r} ({reason})",
        "digit-loving model, max 5": f"{cut!r} ({cut_reason})",
    }


if __name__ == "__main__":
    print_report(report(sys.modules[__name__]))
