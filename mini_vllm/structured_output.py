"""Structured outputs: a grammar per request, an allowed-token bitmask per step.

A request that sets ``SamplingParams(structured_outputs=StructuredOutputsParams(...))``
gets a grammar when it is added. Every step, before the sampler sees the logits, the
grammar writes one bitmask row (bit ``t`` set = token ``t`` keeps the output inside the
language) and every other logit becomes ``-inf``. After the step, the sampled token
advances the grammar; the request finishes when its grammar has accepted EOS.

The names are upstream's (vllm/v1/structured_output/@0decac0): ``StructuredOutputsParams``
(vllm/sampling_params.py:41@0decac0 (StructuredOutputsParams)), the per-request
``StructuredOutputGrammar`` with ``accept_tokens`` / ``validate_tokens`` / ``rollback`` /
``fill_bitmask`` / ``is_terminated``
(vllm/v1/structured_output/backend_types.py:31@0decac0 (StructuredOutputGrammar)), the
engine-level backend with ``compile_grammar`` / ``allocate_token_bitmask``, and the
``StructuredOutputManager`` with ``grammar_init`` / ``grammar_bitmask``. Upstream's
default backend is the xgrammar library; mini_vllm's backend is this file: every
constraint (regex, choice, JSON schema) is lowered to a regular expression, compiled to
a byte-level DFA, and lifted to tokens with a per-state mask cache.

Where mini_vllm simplifies:

- One machine, a DFA. A JSON *schema* without recursion is a regular language, so it
  lowers to a regex (as outlines does); xgrammar compiles grammars to a pushdown
  automaton, which also covers recursive schemas, ``json_object`` and EBNF ``grammar``.
  Those two fields are refused here (phase 12 lab-03 builds the pushdown machine).
- JSON is emitted with no whitespace at all (separators ``,`` and ``:``); xgrammar with
  ``disable_any_whitespace=True`` still writes ``json.dumps``'s ``", "`` and ``": "``.
  ``.`` and ``[^...]`` match printable ASCII only, so a JSON string never holds a raw
  control character (xgrammar 0.2.9 lets a length-bounded string hold them; phase 12
  lab-02's upstream test pins that).
- Compilation is synchronous in ``grammar_init`` (microseconds for these grammars), so
  no request ever waits in upstream's WAITING_FOR_STRUCTURED_OUTPUT_GRAMMAR state
  (vllm/v1/request.py:112@0decac0 ("self.status = RequestStatus.WAITING_FOR_STRUCTURED_OUTPUT_GRAMMAR")).
- No speculative decoding, so one bitmask row per sampling request, not ``1 + k``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

import numpy as np

# ----------------------------------------------------------------------------- user API


@dataclass(frozen=True)
class StructuredOutputsParams:
    """Exactly one constraint. Upstream's class has six (``json``, ``regex``, ``choice``,
    ``grammar``, ``json_object``, ``structural_tag``) and the same exactly-one check
    (vllm/sampling_params.py:59@0decac0 (StructuredOutputsParams.__post_init__)).
    mini_vllm accepts the first three and refuses the rest, naming the field. The pin
    removed the older ``GuidedDecodingParams`` / ``SamplingParams(guided_decoding=...)``.
    Every problem is a ValueError that names ``structured_outputs.<field>``; the grammar
    itself is compiled (and a bad pattern or schema refused) when the params are built."""

    json: str | dict | None = None
    regex: str | None = None
    choice: tuple[str, ...] | list[str] | None = None
    grammar: str | None = None
    json_object: bool | None = None

    def __post_init__(self) -> None:
        names = [n for n in ("json", "regex", "choice", "grammar", "json_object") if getattr(self, n) is not None]
        if len(names) != 1:
            raise ValueError(f"structured_outputs: set exactly one of json, regex, choice (got {names or 'none'})")
        (name,) = names
        if name in ("grammar", "json_object"):
            raise ValueError(f"structured_outputs.{name} is not supported by mini_vllm's DFA backend "
                             "(it needs a pushdown automaton: phase 12 lab-03); use json, regex or choice")
        if name == "choice":
            choice = self.choice
            if isinstance(choice, str) or not isinstance(choice, (list, tuple)) or not choice \
                    or not all(isinstance(c, str) and c for c in choice):
                raise ValueError(f"structured_outputs.choice must be a non-empty list of non-empty str, got {choice!r}")
            object.__setattr__(self, "choice", tuple(choice))
        if name == "regex" and (not isinstance(self.regex, str) or not self.regex):
            raise ValueError(f"structured_outputs.regex must be a non-empty str, got {self.regex!r}")
        if name == "json" and not isinstance(self.json, (str, dict)):
            raise ValueError(f"structured_outputs.json must be a JSON-schema dict or str, got {type(self.json).__name__}")
        try:
            _RegexParser(get_structured_output_regex(self)).parse()
        except ValueError as exc:
            raise ValueError(f"structured_outputs.{name}: {exc}") from None


class StructuredOutputOptions(enum.Enum):
    """vllm/v1/structured_output/backend_types.py:19@0decac0 (StructuredOutputOptions), the three used here."""

    JSON = enum.auto()
    REGEX = enum.auto()
    CHOICE = enum.auto()


StructuredOutputKey = tuple[StructuredOutputOptions, str]


def get_structured_output_key(params: StructuredOutputsParams) -> StructuredOutputKey:
    """The compile-cache key, as
    vllm/v1/structured_output/request.py:77@0decac0 (get_structured_output_key): a dict schema is ``json.dumps``-ed, so two requests with
    the same schema share one compiled grammar."""
    if params.json is not None:
        return StructuredOutputOptions.JSON, params.json if isinstance(params.json, str) else json.dumps(params.json)
    if params.regex is not None:
        return StructuredOutputOptions.REGEX, params.regex
    return StructuredOutputOptions.CHOICE, json.dumps(list(params.choice))


def get_structured_output_regex(params: StructuredOutputsParams) -> str:
    kind, spec = get_structured_output_key(params)
    if kind is StructuredOutputOptions.REGEX:
        return spec
    if kind is StructuredOutputOptions.CHOICE:
        # Upstream lowers a choice to an EBNF alternation
        # (vllm/v1/structured_output/utils.py:451@0decac0 (choice_as_grammar)); here, a regex one.
        return "|".join(regex_escape(c) for c in json.loads(spec))
    try:
        schema = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from None
    return json_schema_to_regex(schema)


# ----------------------------------------------------------------------------- regex -> DFA

PRINTABLE = frozenset(range(0x20, 0x7F))
_CLASS_ESCAPES = {
    "d": frozenset(b"0123456789"),
    "w": frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"),
    "s": frozenset(b" \t\n\r"),
}
_CHAR_ESCAPES = {"n": 0x0A, "t": 0x09, "r": 0x0D}


def regex_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}" else c for c in text)


class _RegexParser:
    """Recursive descent over the subset: literals, ``.``, ``[...]`` / ``[^...]``,
    ``\\d \\w \\s`` and escaped punctuation, groups ``( )`` / ``(?: )``, ``|``, and
    the quantifiers ``* + ? {m} {m,} {m,n}``. The AST: ``("set", bytes)``,
    ``("cat", [..])``, ``("alt", [..])``, ``("rep", node, lo, hi or None)``."""

    def __init__(self, pattern: str) -> None:
        self.s, self.i = pattern, 0

    def error(self, what: str) -> ValueError:
        return ValueError(f"bad regex {self.s!r} at position {self.i}: {what}")

    def parse(self):
        node = self.alt()
        if self.i != len(self.s):
            raise self.error(f"unexpected {self.s[self.i]!r}")
        return node

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def alt(self):
        branches = [self.cat()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.cat())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def cat(self):
        items = []
        while self.peek() not in (None, "|", ")"):
            items.append(self.quantified())
        return ("cat", items)

    def quantified(self):
        node = self.atom()
        while self.peek() in ("*", "+", "?", "{"):
            c = self.s[self.i]
            self.i += 1
            if c == "{":
                end = self.s.find("}", self.i)
                if end < 0:
                    raise self.error("unclosed {")
                lo, _, hi = self.s[self.i : end].partition(",")
                try:
                    lo_n = int(lo)
                    hi_n = lo_n if "," not in self.s[self.i : end] else (int(hi) if hi else None)
                except ValueError:
                    raise self.error("bad {m,n}") from None
                if hi_n is not None and hi_n < lo_n:
                    raise self.error("{m,n} with n < m")
                self.i = end + 1
                node = ("rep", node, lo_n, hi_n)
            else:
                node = ("rep", node, {"*": 0, "+": 1, "?": 0}[c], 1 if c == "?" else None)
        return node

    def atom(self):
        c = self.peek()
        if c is None:
            raise self.error("pattern ends early")
        self.i += 1
        if c == "(":
            if self.s.startswith("?:", self.i):
                self.i += 2
            node = self.alt()
            if self.peek() != ")":
                raise self.error("unclosed (")
            self.i += 1
            return node
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            return ("set", PRINTABLE - {0x0A})
        if c == "\\":
            return ("set", self.escape())
        if c in "*+?{":
            raise self.error(f"nothing to repeat before {c!r}")
        if c in "^$":
            raise self.error("anchors are implicit: the whole output must match")
        data = c.encode()
        return ("set", frozenset(data)) if len(data) == 1 else ("cat", [("set", frozenset([b])) for b in data])

    def escape(self) -> frozenset:
        c = self.peek()
        if c is None:
            raise self.error("dangling backslash")
        self.i += 1
        if c in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[c]
        if c in _CHAR_ESCAPES:
            return frozenset([_CHAR_ESCAPES[c]])
        if c.isalnum():
            raise self.error(f"unsupported escape \\{c}")
        return frozenset(c.encode())

    def char_class(self) -> frozenset:
        negate = self.peek() == "^"
        self.i += negate
        chars: set[int] = set()
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise self.error("unclosed [")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            self.i += 1
            if c == "\\":
                chars |= self.escape()
                continue
            if ord(c) > 0x7E:
                raise self.error("non-ASCII characters in a class are not supported")
            if self.peek() == "-" and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                hi = self.s[self.i + 1]
                if ord(hi) < ord(c):
                    raise self.error(f"bad range {c}-{hi}")
                chars |= set(range(ord(c), ord(hi) + 1))
                self.i += 2
            else:
                chars.add(ord(c))
        return frozenset(PRINTABLE - chars) if negate else frozenset(chars)


class _NFA:
    """Thompson construction: ``eps[s]`` epsilon targets, ``edges[s]`` (byte set, target)."""

    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[frozenset, int]]] = []

    def state(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node) -> tuple[int, int]:
        kind = node[0]
        start, end = self.state(), self.state()
        if kind == "set":
            self.edges[start].append((node[1], end))
        elif kind == "cat":
            cur = start
            for child in node[1]:
                s, e = self.build(child)
                self.eps[cur].append(s)
                cur = e
            self.eps[cur].append(end)
        elif kind == "alt":
            for child in node[1]:
                s, e = self.build(child)
                self.eps[start].append(s)
                self.eps[e].append(end)
        else:  # rep
            _, child, lo, hi = node
            cur = start
            for _ in range(lo):
                s, e = self.build(child)
                self.eps[cur].append(s)
                cur = e
            if hi is None:
                s, e = self.build(child)
                self.eps[cur] += [s, end]
                self.eps[e] += [s, end]
            else:
                for _ in range(hi - lo):
                    s, e = self.build(child)
                    self.eps[cur] += [s, end]
                    cur = e
            self.eps[cur].append(end)
        return start, end

    def closure(self, states) -> frozenset:
        seen, stack = set(states), list(states)
        while stack:
            for t in self.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)


MAX_DFA_STATES = 4096


@dataclass
class DFA:
    """``transitions[s, byte]`` is the next state or -1 (dead); state 0 is the start.
    Only *live* states are kept: every state can still reach an accepting one, so a
    token that keeps the walk alive always leaves a way to finish."""

    transitions: np.ndarray  # int32 [num_states, 256]
    accepting: np.ndarray  # bool [num_states]

    @property
    def num_states(self) -> int:
        return len(self.accepting)

    def walk(self, state: int, data: bytes) -> int:
        for b in data:
            state = int(self.transitions[state, b])
            if state < 0:
                return -1
        return state


def compile_regex(pattern: str) -> DFA:
    """Regex -> NFA -> DFA (subset construction) -> drop states that cannot accept."""
    nfa = _NFA()
    start, end = nfa.build(_RegexParser(pattern).parse())
    first = nfa.closure([start])
    index, order, rows = {first: 0}, [first], []
    while len(rows) < len(order):
        cur = order[len(rows)]
        row = np.full(256, -1, dtype=np.int64)
        moves: dict[int, set[int]] = {}
        for s in cur:
            for chars, t in nfa.edges[s]:
                for b in chars:
                    moves.setdefault(b, set()).add(t)
        for b, targets in moves.items():
            nxt = nfa.closure(targets)
            if nxt not in index:
                if len(order) >= MAX_DFA_STATES:
                    raise ValueError(f"pattern {pattern!r} needs more than {MAX_DFA_STATES} DFA states")
                index[nxt] = len(order)
                order.append(nxt)
            row[b] = index[nxt]
        rows.append(row)
    trans = np.stack(rows)
    accepting = np.array([end in s for s in order])
    live = accepting.copy()
    while True:  # backward reachability from the accepting states
        grown = live | ((trans >= 0) & live[np.maximum(trans, 0)]).any(axis=1)
        if (grown == live).all():
            break
        live = grown
    if not live[0]:
        raise ValueError(f"pattern {pattern!r} matches nothing")
    new_id = np.cumsum(live) - 1
    trans = trans[live]
    trans = np.where((trans >= 0) & live[np.maximum(trans, 0)], new_id[np.maximum(trans, 0)], -1)
    return DFA(trans.astype(np.int32), accepting[live])


# ----------------------------------------------------------------------------- JSON schema -> regex

_JSON_STRING_CHAR = r'([^"\\]|\\["\\/bfnrt])'
_JSON_INT = r"-?(0|[1-9][0-9]*)"
_JSON_NUMBER = _JSON_INT + r"(\.[0-9]+)?([eE][-+]?[0-9]+)?"
_SCHEMA_KEYS = {"type", "properties", "required", "items", "enum", "const", "minLength", "maxLength",
                "minItems", "maxItems", "additionalProperties", "title", "description", "anyOf", "pattern"}


def json_schema_to_regex(schema) -> str:
    """A JSON schema (the subset below) as a regex over compact JSON text.

    Objects list every property in ``properties`` order (all of them, whatever
    ``required`` says: the required ones are the only safe choice for a DFA that must
    not guess), strings take ``minLength`` / ``maxLength`` / ``pattern``, arrays
    ``items`` / ``minItems`` / ``maxItems``; plus ``enum``, ``const``, ``anyOf``,
    integer, number, boolean, null. Anything else (``$ref``, ``oneOf``, ...) raises."""
    if not isinstance(schema, dict):
        raise ValueError(f"a schema must be an object, got {type(schema).__name__}")
    unknown = sorted(set(schema) - _SCHEMA_KEYS)
    if unknown:
        raise ValueError(f"unsupported JSON-schema keyword(s) {unknown}")
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not isinstance(values, list) or not values:
            raise ValueError("enum must be a non-empty list")
        return "(" + "|".join(regex_escape(json.dumps(v, separators=(",", ":"))) for v in values) + ")"
    if "anyOf" in schema:
        return "(" + "|".join(json_schema_to_regex(s) for s in schema["anyOf"]) + ")"
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise ValueError("properties must be an object")
        missing = set(schema.get("required", [])) - set(props)
        if missing:
            raise ValueError(f"required names properties that are not defined: {sorted(missing)}")
        parts = [regex_escape(json.dumps(k)) + ":" + json_schema_to_regex(v) for k, v in props.items()]
        return r"\{" + ",".join(parts) + r"\}"
    if kind == "array":
        item = json_schema_to_regex(schema.get("items", {"type": "string"}))
        lo, hi = int(schema.get("minItems", 0)), schema.get("maxItems")
        if lo == 0 and hi == 0:
            return r"\[\]"
        more = f"{{{max(lo - 1, 0)},{'' if hi is None else int(hi) - 1}}}"
        body = f"{item}(,{item}){more}"
        return r"\[" + (body if lo else f"({body})?") + r"\]"
    if kind == "string":
        if "pattern" in schema:
            return '"(' + schema["pattern"] + ')"'
        lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
        return '"' + _JSON_STRING_CHAR + f"{{{lo},{'' if hi is None else int(hi)}}}" + '"'
    if kind == "integer":
        return _JSON_INT
    if kind == "number":
        return _JSON_NUMBER
    if kind == "boolean":
        return "(true|false)"
    if kind == "null":
        return "null"
    raise ValueError(f"unsupported or missing type {kind!r}")


# ----------------------------------------------------------------------------- bitmask


def allocate_token_bitmask(num_rows: int, vocab_size: int) -> np.ndarray:
    """``[rows, ceil(vocab / 32)]`` int32, all bits set (-1 = every token allowed), the
    layout of ``xgr.allocate_token_bitmask``: token ``t`` is bit ``t % 32`` of word ``t // 32``."""
    return np.full((num_rows, (vocab_size + 31) // 32), -1, dtype=np.int32)


def pack_bitmask(allowed: np.ndarray) -> np.ndarray:
    """bool ``[vocab]`` -> int32 words, little-endian bit order."""
    words = (len(allowed) + 31) // 32
    padded = np.zeros(words * 32, dtype=bool)
    padded[: len(allowed)] = allowed
    return np.packbits(padded, bitorder="little").view("<i4").astype(np.int32)


def unpack_bitmask(words: np.ndarray, vocab_size: int) -> np.ndarray:
    """int32 words -> bool ``[vocab]``."""
    return np.unpackbits(np.asarray(words, dtype="<i4").view(np.uint8), bitorder="little")[:vocab_size].astype(bool)


# ----------------------------------------------------------------------------- grammar + backend


class CompiledGrammar:
    """One compiled constraint over one vocabulary: the DFA plus the token lifting.
    ``token_mask(state)`` is computed the first time a state is seen and cached, a lazy
    version of xgrammar's compile-time token classification. Shared by every request
    with the same key."""

    def __init__(self, dfa: DFA, token_bytes: list[bytes | None], eos_token_id: int) -> None:
        self.dfa, self.token_bytes, self.eos_token_id = dfa, token_bytes, eos_token_id
        self.vocab_size = len(token_bytes)
        self._masks: dict[int, np.ndarray] = {}

    def next_state(self, state: int, token_id: int) -> int:
        """-1 when ``token_id`` is not allowed in ``state`` (EOS: allowed iff accepting)."""
        if token_id == self.eos_token_id:
            return state if self.dfa.accepting[state] else -1
        if not 0 <= token_id < self.vocab_size or not self.token_bytes[token_id]:
            return -1
        return self.dfa.walk(state, self.token_bytes[token_id])

    def token_mask(self, state: int) -> np.ndarray:
        mask = self._masks.get(state)
        if mask is None:
            mask = np.array([self.next_state(state, t) >= 0 for t in range(self.vocab_size)])
            self._masks[state] = mask
        return mask


class StructuredOutputGrammar:
    """Per-request state over a shared ``CompiledGrammar``: a history of DFA states so
    ``rollback`` is exact. Mirrors
    vllm/v1/structured_output/backend_xgrammar.py:132@0decac0 (XgrammarGrammar), with the xgrammar ``GrammarMatcher`` replaced by the DFA."""

    def __init__(self, compiled: CompiledGrammar) -> None:
        self.compiled = compiled
        self.states = [0]
        self._is_terminated = False
        self.num_processed_tokens = 0

    def accept_tokens(self, request_id: str, tokens: list[int]) -> bool:
        """Advance through ``tokens``; False (and no advance for the refused token) at the
        first one the grammar does not allow. Accepting EOS terminates the grammar."""
        for token in tokens:
            if self._is_terminated:
                return False
            nxt = self.compiled.next_state(self.states[-1], int(token))
            if nxt < 0:
                return False
            self.states.append(nxt)
            self.num_processed_tokens += 1
            self._is_terminated = int(token) == self.compiled.eos_token_id
        return True

    def validate_tokens(self, tokens: list[int]) -> list[int]:
        """The longest accepted prefix of ``tokens``, without advancing."""
        n = len(self.states)
        terminated = self._is_terminated
        accepted = []
        for token in tokens:
            if not self.accept_tokens("", [token]):
                break
            accepted.append(token)
        self.rollback(len(self.states) - n)
        self._is_terminated = terminated
        return accepted

    def rollback(self, num_tokens: int) -> None:
        if not 0 <= num_tokens < len(self.states):
            raise ValueError(f"cannot roll back {num_tokens} tokens: {len(self.states) - 1} accepted")
        if num_tokens:
            del self.states[-num_tokens:]
            self._is_terminated = False
        self.num_processed_tokens -= num_tokens

    def allowed_tokens(self) -> np.ndarray:
        """bool ``[vocab]``: the unpacked form of this grammar's bitmask row."""
        if self._is_terminated:
            return np.zeros(self.compiled.vocab_size, dtype=bool)
        return self.compiled.token_mask(self.states[-1])

    def fill_bitmask(self, bitmask: np.ndarray, batch_index: int) -> None:
        bitmask[batch_index] = pack_bitmask(self.allowed_tokens())

    def is_terminated(self) -> bool:
        return self._is_terminated

    def reset(self) -> None:
        self.states = [0]
        self._is_terminated = False
        self.num_processed_tokens = 0


class StructuredOutputBackend:
    """Engine-level: one vocabulary, a cache of compiled grammars by key. Upstream's
    ``XgrammarBackend.compile_grammar``
    (vllm/v1/structured_output/backend_xgrammar.py:77@0decac0 (XgrammarBackend.compile_grammar)) switches over the request types the same way."""

    def __init__(self, token_bytes: list[bytes | None], eos_token_id: int) -> None:
        if not 0 <= eos_token_id < len(token_bytes):
            raise ValueError(f"eos_token_id {eos_token_id} is outside the vocabulary of {len(token_bytes)}")
        self.token_bytes, self.eos_token_id = token_bytes, eos_token_id
        self.vocab_size = len(token_bytes)
        self.cache: dict[StructuredOutputKey, CompiledGrammar] = {}

    def compile_grammar(self, params: StructuredOutputsParams) -> StructuredOutputGrammar:
        key = get_structured_output_key(params)
        compiled = self.cache.get(key)
        if compiled is None:
            dfa = compile_regex(get_structured_output_regex(params))
            compiled = self.cache[key] = CompiledGrammar(dfa, self.token_bytes, self.eos_token_id)
        return StructuredOutputGrammar(compiled)

    def allocate_token_bitmask(self, max_num_seqs: int) -> np.ndarray:
        return allocate_token_bitmask(max_num_seqs, self.vocab_size)


def token_bytes_of(tokenizer, vocab_size: int) -> list[bytes | None]:
    """Each token id's bytes (None: special, never allowed by a grammar). ByteTokenizer's
    ids are bytes; for another tokenizer each id is decoded on its own, which is exact
    for byte-level BPE pieces that are whole characters and approximate otherwise."""
    out: list[bytes | None] = []
    for t in range(vocab_size):
        if t == tokenizer.eos_token_id:
            out.append(None)
        elif type(tokenizer).__name__ == "ByteTokenizer":
            out.append(bytes([t]) if t < 256 else None)
        else:
            out.append(tokenizer.decode([t]).encode() or None)
    return out


@dataclass
class StructuredOutputRequest:
    """vllm/v1/structured_output/request.py:22@0decac0 (StructuredOutputRequest), without
    the Future: the grammar is ready as soon as it is set."""

    params: StructuredOutputsParams
    grammar: StructuredOutputGrammar | None = None

    @staticmethod
    def from_sampling_params(sampling_params) -> "StructuredOutputRequest | None":
        params = getattr(sampling_params, "structured_outputs", None)
        return None if params is None else StructuredOutputRequest(params)


@dataclass
class GrammarOutput:
    """vllm/v1/core/sched/output.py GrammarOutput: the request ids in row order and the
    packed bitmask, one row each."""

    structured_output_request_ids: list[str]
    grammar_bitmask: np.ndarray


class StructuredOutputManager:
    """Engine-level owner of the backend (upstream: one per scheduler,
    vllm/v1/core/sched/scheduler.py:90@0decac0 ("self.structured_output_manager = structured_output_manager")).
    The backend is built on first use, from ``tokenizer``, as upstream builds it in
    ``grammar_init`` (vllm/v1/structured_output/__init__.py:115@0decac0 (StructuredOutputManager.grammar_init))."""

    def __init__(self, vocab_size: int, tokenizer=None) -> None:
        self.vocab_size, self.tokenizer = vocab_size, tokenizer
        self.backend: StructuredOutputBackend | None = None

    def grammar_init(self, request) -> None:
        """Compile the request's grammar (or take it from the cache). Raises before the
        request is queued if there is no tokenizer to lift the grammar to tokens."""
        so_request = request.structured_output_request
        if so_request is None:
            return
        if self.backend is None:
            if self.tokenizer is None or self.tokenizer.eos_token_id is None:
                raise ValueError(f"request {request.request_id!r}: structured_outputs needs a tokenizer with an EOS token")
            self.backend = StructuredOutputBackend(token_bytes_of(self.tokenizer, self.vocab_size),
                                                   self.tokenizer.eos_token_id)
        so_request.grammar = self.backend.compile_grammar(so_request.params)

    def grammar_bitmask(self, requests: dict, structured_output_request_ids: list[str]) -> GrammarOutput | None:
        """One row per constrained request that samples this step, in the given order
        (vllm/v1/structured_output/__init__.py:204@0decac0 (StructuredOutputManager.grammar_bitmask),
        its serial path without speculative rows)."""
        ids = [rid for rid in structured_output_request_ids if requests[rid].structured_output_request is not None]
        if not ids:
            return None
        bitmask = allocate_token_bitmask(len(ids), self.vocab_size)
        for i, rid in enumerate(ids):
            grammar = requests[rid].structured_output_request.grammar
            if not grammar.is_terminated():
                grammar.fill_bitmask(bitmask, i)
        return GrammarOutput(ids, bitmask)

    def update_from_output(self, scheduler, sampled_token_ids: dict[str, int]) -> list:
        """Advance each live constrained request's grammar by its new token, in the order
        ``update_from_output`` appended them (upstream advances inside it,
        vllm/v1/core/sched/scheduler.py:1416@0decac0 ("if new_token_ids and self.structured_output_manager.should_advance(request):")).
        A grammar that refuses its token ends the request FINISHED_ERROR, as upstream; one
        that has terminated (accepted EOS under ``ignore_eos``) ends it FINISHED_STOPPED.
        Returns the requests finished here."""
        from mini_vllm.request import RequestStatus

        finished = []
        for rid, token in sampled_token_ids.items():
            request = scheduler.requests.get(rid)
            if request is None or request.is_finished() or request.structured_output_request is None:
                continue
            grammar = request.structured_output_request.grammar
            if not grammar.accept_tokens(rid, [int(token)]):
                (req,) = scheduler.finish_requests([rid], RequestStatus.FINISHED_ERROR)
                req.stop_reason = f"grammar refused token {int(token)}"
                finished.append(req)
            elif grammar.is_terminated():
                finished += scheduler.finish_requests([rid], RequestStatus.FINISHED_STOPPED)
        return finished


def apply_grammar_bitmask(grammar_output: GrammarOutput | None, sample_ids: list[str], logits: np.ndarray) -> None:
    """Set every disallowed logit of a constrained row to -inf, in place; rows are matched
    by request id because the bitmask's order need not be the batch's (upstream reorders
    the same way, vllm/v1/structured_output/utils.py:44@0decac0 (apply_grammar_bitmask))."""
    if grammar_output is None:
        return
    row_of = {rid: i for i, rid in enumerate(sample_ids)}
    for j, rid in enumerate(grammar_output.structured_output_request_ids):
        allowed = unpack_bitmask(grammar_output.grammar_bitmask[j], logits.shape[1])
        logits[row_of[rid], ~allowed] = -np.inf


__all__ = [
    "StructuredOutputsParams", "StructuredOutputOptions", "StructuredOutputGrammar", "StructuredOutputBackend",
    "StructuredOutputManager", "StructuredOutputRequest", "GrammarOutput", "CompiledGrammar", "DFA",
    "compile_regex", "json_schema_to_regex", "allocate_token_bitmask", "pack_bitmask", "unpack_bitmask",
    "apply_grammar_bitmask", "get_structured_output_key", "token_bytes_of",
]
