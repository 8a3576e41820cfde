"""Lab 12-03: a pushdown machine for a JSON subset, and its token mask.

The language: ``value := int | object``; ``int := '0' | [1-9][0-9]*``;
``object := '{' (pair (',' pair)*)? '}'``; ``pair := '"' [a-c]+ '"' ':' value``.
No whitespace. The vocabulary and fake models come from ``course.lab_support.phase_12``.
Fill in TODOs 1-5 (README "Tasks").
"""

from __future__ import annotations

import json
import sys

import numpy as np

from course.lab_support.phase_12 import JSON_EOS, JSON_VOCAB, nesting_model, preferring, print_report  # noqa: F401 (given)

DIGITS = frozenset("0123456789")
LETTERS = frozenset("abc")
# Where the machine is inside the current production:
#   value           a value must start here
#   int, int_zero   inside an int ('0' alone may not be followed by a digit)
#   obj_first       just after '{': a key or '}'
#   key             after ',': a key must follow
#   key_first       after a key's opening quote: at least one letter
#   key_body        inside a key: a letter or the closing quote
#   colon           after a key
#   comma_or_close  after a value inside an object
#   done            the top-level value is complete: only EOS
MODES = ("value", "int", "int_zero", "obj_first", "key", "key_first", "key_body", "colon", "comma_or_close", "done")


class JsonMachine:
    """``mode`` plus ``depth``, the number of open objects. Only objects nest and every
    stack entry would be the same symbol, so a counter is the whole stack."""

    def __init__(self) -> None:
        self.mode = "value"
        self.depth = 0

    def clone(self) -> "JsonMachine":
        other = JsonMachine()
        other.mode, other.depth = self.mode, self.depth
        return other

    def allowed(self) -> set[str]:
        """The characters that may come next (EOS is ``accepting()``'s question)."""
        raise NotImplementedError("TODO 1: list the characters the current mode allows (README task 1)")

    def feed(self, ch: str) -> None:
        """Advance by one character, or raise ValueError and change nothing."""
        raise NotImplementedError("TODO 2: advance the machine by one character (README task 2)")

    def accepting(self) -> bool:
        """True when the text so far is a complete value: EOS may come next."""
        raise NotImplementedError("TODO 3: say whether a complete value has been read (README task 3)")


def token_mask(machine: JsonMachine, vocab: list[str | None], eos_id: int) -> np.ndarray:
    """bool ``[len(vocab)]``: a token is allowed iff feeding all its characters to a copy
    of ``machine`` raises nothing; EOS iff ``machine`` accepts; None never."""
    raise NotImplementedError("TODO 4: lift the machine to a token mask (README task 4)")


def constrained_generate(vocab: list[str | None], eos_id: int, logits_fn, max_tokens: int):
    """Greedy decoding under the pushdown mask: ``(token_ids, text, finish_reason, machine)``."""
    raise NotImplementedError("TODO 5: decode under the pushdown mask (README task 5)")


def report(lab) -> dict:
    _, deep, reason, m = lab.constrained_generate(JSON_VOCAB, JSON_EOS, nesting_model(JSON_VOCAB, 8), 80)
    zero = lab.preferring(JSON_VOCAB, ["0", "1", "<eos>"])
    _, z, z_reason, _ = lab.constrained_generate(JSON_VOCAB, JSON_EOS, zero, 5)
    lover = lab.preferring(JSON_VOCAB, ["{", '"', "a", ":", ",", "0"])
    _, cut, cut_reason, cm = lab.constrained_generate(JSON_VOCAB, JSON_EOS, lover, 30)
    return {
        "nesting model, depth 8": f"{deep!r} ({reason}), json.loads ok: {json.loads(deep) is not None}",
        "zero-then-one model": f"{z!r} ({z_reason})",
        "brace lover, max 30": f"{cut!r} ({cut_reason}, depth {cm.depth})",
    }


if __name__ == "__main__":
    print_report(report(sys.modules[__name__]))
