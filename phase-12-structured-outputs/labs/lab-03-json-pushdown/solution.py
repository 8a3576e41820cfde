"""Lab 12-03 (reference): a pushdown machine for a JSON subset, and its token mask.

The language: ``value := int | object``; ``int := '0' | [1-9][0-9]*``;
``object := '{' (pair (',' pair)*)? '}'``; ``pair := '"' [a-c]+ '"' ':' value``.
No whitespace. The vocabulary and fake models come from ``course.lab_support.phase_12``.
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
        mode, inside = self.mode, self.depth > 0
        closers = {",", "}"} if inside else set()
        if mode == "value":
            return {"{"} | DIGITS
        if mode == "int":
            return set(DIGITS) | closers
        if mode == "int_zero":
            return closers
        if mode == "obj_first":
            return {'"', "}"}
        if mode == "key":
            return {'"'}
        if mode == "key_first":
            return set(LETTERS)
        if mode == "key_body":
            return set(LETTERS) | {'"'}
        if mode == "colon":
            return {":"}
        if mode == "comma_or_close":
            return {",", "}"}
        return set()

    def feed(self, ch: str) -> None:
        """Advance by one character, or raise ValueError and change nothing."""
        if ch not in self.allowed():
            raise ValueError(f"{ch!r} is not allowed in mode {self.mode} at depth {self.depth}")
        mode = self.mode
        if mode in ("int", "int_zero") and ch in ",}":
            self.mode = "comma_or_close"
            self.feed(ch)
        elif mode == "value":
            if ch == "{":
                self.depth += 1
                self.mode = "obj_first"
            else:
                self.mode = "int_zero" if ch == "0" else "int"
        elif mode == "int":
            pass
        elif mode in ("obj_first", "comma_or_close") and ch == "}":
            self.depth -= 1
            self.mode = "done" if self.depth == 0 else "comma_or_close"
        elif mode in ("obj_first", "key"):
            self.mode = "key_first"
        elif mode == "comma_or_close":
            self.mode = "key"
        elif mode == "key_first":
            self.mode = "key_body"
        elif mode == "key_body":
            self.mode = "colon" if ch == '"' else "key_body"
        elif mode == "colon":
            self.mode = "value"

    def accepting(self) -> bool:
        """True when the text so far is a complete value: EOS may come next."""
        return self.mode == "done" or (self.depth == 0 and self.mode in ("int", "int_zero"))


def token_mask(machine: JsonMachine, vocab: list[str | None], eos_id: int) -> np.ndarray:
    """bool ``[len(vocab)]``: a token is allowed iff feeding all its characters to a copy
    of ``machine`` raises nothing; EOS iff ``machine`` accepts; None never."""
    mask = np.zeros(len(vocab), dtype=bool)
    for t, text in enumerate(vocab):
        if t == eos_id:
            mask[t] = machine.accepting()
            continue
        if not text:
            continue
        trial = machine.clone()
        try:
            for ch in text:
                trial.feed(ch)
        except ValueError:
            continue
        mask[t] = True
    return mask


def constrained_generate(vocab: list[str | None], eos_id: int, logits_fn, max_tokens: int):
    """Greedy decoding under the pushdown mask: ``(token_ids, text, finish_reason, machine)``."""
    machine = JsonMachine()
    ids: list[int] = []
    while len(ids) < max_tokens:
        logits = np.array(logits_fn(ids), dtype=np.float64)
        logits[~token_mask(machine, vocab, eos_id)] = -np.inf
        token = int(np.argmax(logits))
        ids.append(token)
        if token == eos_id:
            return ids, "".join(vocab[t] for t in ids[:-1]), "stop", machine
        for ch in vocab[token]:
            machine.feed(ch)
    return ids, "".join(vocab[t] for t in ids), "length", machine


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
