"""Learner bugs for phase 12's labs (see tools/mutate_labs.py for the format)."""

L1 = "lab-01-regex-fsm-mask"
L2 = "lab-02-json-schema-constrained"
L3 = "lab-03-json-pushdown"

MUTANTS = [
    # ------------------------------------------------------------------ lab-01
    dict(lab=L1, name="plus-loops-before-the-atom",
         desc="puts the + self-loop on the state before the atom, so the atom is never left",
         find="transitions[(i + 1, c)] = i + 1", replace="transitions[(i, c)] = i"),
    dict(lab=L1, name="eos-always-legal",
         desc="lets the model stop anywhere: EOS is not gated on an accepting state",
         find="mask[t] = state in fsm.accepting", replace="mask[t] = True"),
    dict(lab=L1, name="first-char-decides",
         desc="checks only a token's first character, so '1x' or 'x0' slip through where they die later",
         find="mask[t] = advance(fsm, state, text) is not None",
         replace="mask[t] = advance(fsm, state, text[0]) is not None"),
    dict(lab=L1, name="special-token-is-empty-text",
         desc="treats a special (None) token as empty text, which walks nowhere and so looks alive",
         find="        elif text:\n            mask[t] = advance(fsm, state, text) is not None",
         replace="        else:\n            mask[t] = advance(fsm, state, text or \"\") is not None"),
    dict(lab=L1, name="bitmask-big-endian-bits",
         desc="numbers bits from the top of each word, so token 0 lands on the sign bit",
         find="words[t // 32] |= 1 << (int(t) % 32)", replace="words[t // 32] |= 1 << (31 - int(t) % 32)"),
    dict(lab=L1, name="no-ambiguity-check",
         desc="compiles a + atom that shares characters with the next one, silently making the machine guess",
         find="if atom.plus and i + 1 < len(atoms) and atom.chars & atoms[i + 1].chars:", replace="if False:"),
    dict(lab=L1, name="one-token-too-many",
         desc="lets the loop run while len(ids) <= max_tokens: max_tokens + 1 tokens before 'length'",
         find="while len(ids) < max_tokens:", replace="while len(ids) <= max_tokens:"),
    dict(lab=L1, name="range-end-exclusive",
         desc="builds a class range with Python's exclusive end, so [0-9] misses 9",
         find="range(ord(body[j]), ord(body[j + 2]) + 1)", replace="range(ord(body[j]), ord(body[j + 2]))"),
    dict(lab=L1, name="double-plus-accepted",
         desc="accepts 'a++' by re-marking an atom that is already repeated",
         find="if not atoms or atoms[-1].plus:", replace="if not atoms:"),
    dict(lab=L1, name="dead-char-skipped",
         desc="stays in place on a character with no transition instead of dying",
         find="state = fsm.transitions.get((state, c))", replace="state = fsm.transitions.get((state, c), state)"),
    # ------------------------------------------------------------------ lab-03
    dict(lab=L3, name="leading-zero-is-an-int",
         desc="treats a leading 0 like any digit, so 01 and 00 are accepted (json.loads refuses them)",
         find='self.mode = "int_zero" if ch == "0" else "int"', replace='self.mode = "int"'),
    dict(lab=L3, name="close-always-finishes",
         desc="every } ends the document: the parent object is never resumed (no stack)",
         find='self.mode = "done" if self.depth == 0 else "comma_or_close"', replace='self.mode = "done"'),
    dict(lab=L3, name="trailing-comma",
         desc="lets } follow a comma, the trailing-comma classic",
         find="""        if mode == "key":
            return {'"'}""", replace="""        if mode == "key":
            return {'"', "}"}"""),
    dict(lab=L3, name="int-end-eats-the-closer",
         desc="ends the int on , or } but forgets to re-dispatch the character in the new mode",
         find="""            self.mode = "comma_or_close"
            self.feed(ch)""", replace='            self.mode = "comma_or_close"'),
    dict(lab=L3, name="empty-key",
         desc="allows the closing quote right after the opening one: an empty key",
         find="""        if mode == "key_first":
            return set(LETTERS)""", replace="""        if mode == "key_first":
            return set(LETTERS) | {'"'}"""),
    dict(lab=L3, name="accepting-ignores-depth",
         desc="accepts an int at any depth, so an unclosed object with a number in it may stop",
         find='(self.depth == 0 and self.mode in ("int", "int_zero"))', replace='self.mode in ("int", "int_zero")'),
    dict(lab=L3, name="closers-at-top-level",
         desc="offers , and } after a top-level int, where no object is open",
         find='closers = {",", "}"} if inside else set()', replace='closers = {",", "}"}'),
    dict(lab=L3, name="mask-first-char-only",
         desc="lifts to tokens by checking only each token's first character",
         find="""            for ch in text:
                trial.feed(ch)""", replace="""            trial.feed(text[0])"""),
    dict(lab=L3, name="mask-feeds-the-real-machine",
         desc="tries tokens on the machine itself instead of a copy, so every trial advances it",
         find="trial = machine.clone()", replace="trial = machine"),
    dict(lab=L3, name="eos-always-legal",
         desc="never gates EOS, so the model may stop inside an object",
         find="mask[t] = machine.accepting()", replace="mask[t] = True"),
    dict(lab=L3, name="one-token-too-many",
         desc="runs the loop while len(ids) <= max_tokens",
         find="while len(ids) < max_tokens:", replace="while len(ids) <= max_tokens:"),
]
