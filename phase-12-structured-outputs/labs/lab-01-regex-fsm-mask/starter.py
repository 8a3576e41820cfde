"""Lab 12-01: a pattern -> a finite-state machine -> one token mask per step.

The pattern subset is a sequence of atoms: a literal character, an escaped character
(``\\.``), or a class ``[a-f0-9]``, each optionally followed by ``+``. The vocabularies
and fake models come from ``course.lab_support.phase_12``. Fill in TODOs 1-6
(README "Tasks"); ``python starter.py`` prints your numbers once they are done.
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
    raise NotImplementedError("TODO 1: parse the pattern into atoms (README task 1)")


def compile_pattern(atoms: list[Atom]) -> FSM:
    """One state per matched-atom count; ``+`` adds a self-loop on the state after its atom."""
    raise NotImplementedError("TODO 2: build the state machine (README task 2)")


def advance(fsm: FSM, state: int, text: str) -> int | None:
    """Walk ``text`` from ``state``; None as soon as a character has no transition."""
    raise NotImplementedError("TODO 3: walk a string through the machine (README task 3)")


def allowed_tokens(fsm: FSM, state: int, vocab: list[str | None], eos_id: int) -> np.ndarray:
    """bool ``[len(vocab)]``: a token is allowed iff walking all its characters from
    ``state`` stays alive; EOS iff ``state`` accepts; a special token (None) never."""
    raise NotImplementedError("TODO 4: lift the machine to a token mask (README task 4)")


def pack_bitmask(mask: np.ndarray) -> np.ndarray:
    """bool ``[vocab]`` -> int32 words, token ``t`` at bit ``t % 32`` of word ``t // 32``."""
    raise NotImplementedError("TODO 5: pack the mask into int32 words (README task 5)")


def constrained_generate(fsm: FSM, vocab: list[str | None], eos_id: int, logits_fn, max_tokens: int):
    """Greedy decoding under the mask: ``(token_ids, text, finish_reason)``; the reason is
    "stop" when EOS is picked, "length" when ``max_tokens`` tokens were emitted first."""
    raise NotImplementedError("TODO 6: decode under the mask (README task 6)")


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
