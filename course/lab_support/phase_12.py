"""Scaffolding phase 12's labs hand the learner: vocabularies, fake models that prefer the
wrong thing, the real-xgrammar oracle (run in another Python), and report printers.

A "model" here is a function ``logits_fn(token_ids_so_far) -> np.ndarray[vocab]``; the
labs' generators take the argmax of the masked logits, so a model that ranks every legal
token last is the worst case a mask has to survive.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np

LogitsFn = Callable[[list[int]], np.ndarray]

# --------------------------------------------------------------------- models


def preferring(vocab: list[str | None], ranking: list[str]) -> LogitsFn:
    """A model whose logits rank the tokens of ``ranking`` first (in that order), then every
    other token in id order. It never changes its mind: the worst case for a mask is a
    model that wants exactly what the grammar forbids."""
    logits = -np.arange(len(vocab), dtype=np.float64) / len(vocab)
    for rank, text in enumerate(ranking):
        logits[vocab.index(text)] = 100.0 - rank
    return lambda ids: logits.copy()


def hating(vocab: list[str | None], hated: list[str]) -> LogitsFn:
    """The tokens of ``hated`` get the lowest logits (the last one lowest of all)."""
    logits = np.zeros(len(vocab))
    for rank, text in enumerate(hated):
        logits[vocab.index(text)] = -100.0 - rank
    return lambda ids: logits.copy()


def random_model(vocab_size: int, seed: int) -> LogitsFn:
    """Fresh Gaussian logits every step from a seeded generator: a model with no idea."""
    rng = np.random.default_rng(seed)
    return lambda ids: rng.standard_normal(vocab_size)


# --------------------------------------------------------------------- lab 12-01

# A tiny tokenizer's vocabulary: single characters, multi-character pieces that cross
# regex atoms ("0x", "x0", "ff1"), junk the hex pattern never allows, and EOS last.
HEX_VOCAB: list[str | None] = ["0", "1", "7", "9", "a", "f", "x", "0x", "x0", "ff", "1x", "ff1",
                               "q", "@", "zz", ".", " ", "-", None, "<eos>"]
HEX_EOS = HEX_VOCAB.index("<eos>")


# --------------------------------------------------------------------- lab 12-03

# Characters of the JSON subset, a few multi-character pieces whose legality depends on
# the stack ("}," needs an enclosing object) or on the leading-zero rule ("01"), and EOS.
JSON_VOCAB: list[str | None] = (list('{}":,') + list("0123456789") + list("abc")
                                + ['{"', '":', '},', '01', '10', None, "<eos>"])
JSON_EOS = JSON_VOCAB.index("<eos>")


def nesting_model(vocab: list[str | None], depth: int) -> LogitsFn:
    """Opens objects (key "a") until ``depth`` are open, then writes 0; between ``,`` and
    ``}`` it always prefers ``}``, and it ranks EOS first whenever EOS is legal."""
    def logits_fn(ids: list[int]) -> np.ndarray:
        text = "".join(vocab[t] or "" for t in ids)
        open_now = text.count("{") - text.count("}")
        first = "{" if open_now < depth and text.count("{") < depth else "0"
        ranking = ["<eos>", first, '"', "a", ":", "}", ","]
        logits = np.full(len(vocab), -50.0)
        for rank, piece in enumerate(ranking):
            logits[vocab.index(piece)] = 100.0 - rank
        return logits
    return logits_fn


# --------------------------------------------------------------------- the xgrammar oracle

UPSTREAM_PYTHON_ENV = "MINI_VLLM_UPSTREAM_PYTHON"

_XGRAMMAR_MASKS = r'''
import json, sys
import xgrammar as xgr
spec = json.loads(sys.stdin.read())
vocab = [t if t is not None else "<special_%d>" % i for i, t in enumerate(spec["vocab"])]
info = xgr.TokenizerInfo(vocab, vocab_type=xgr.VocabType.RAW, vocab_size=len(vocab), stop_token_ids=[spec["eos"]])
matcher = xgr.GrammarMatcher(xgr.GrammarCompiler(info).compile_regex(spec["regex"]))
bitmask = xgr.allocate_token_bitmask(1, len(vocab))
masks = []
for token in [None] + spec["walk"]:
    if token is not None:
        assert matcher.accept_token(token), token
    matcher.fill_next_token_bitmask(bitmask, 0)
    row = bitmask[0].tolist()
    masks.append([bool((row[i // 32] >> (i % 32)) & 1) for i in range(len(vocab))])
print("@@XGR@@" + json.dumps(masks))
'''


def upstream_python() -> tuple[str | None, str]:
    """The interpreter named by ``$MINI_VLLM_UPSTREAM_PYTHON`` (one with ``xgrammar``), or
    None and the reason the upstream test is skipped."""
    exe = os.environ.get(UPSTREAM_PYTHON_ENV, "").strip()
    if not exe:
        return None, f"set {UPSTREAM_PYTHON_ENV} to a python that has xgrammar (vllm 0.22.1's grammar backend)"
    if not Path(exe).exists():
        return None, f"{UPSTREAM_PYTHON_ENV}={exe} does not exist"
    probe = subprocess.run([exe, "-c", "import xgrammar"], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return None, f"{exe} cannot import xgrammar"
    return exe, ""


def xgrammar_masks(exe: str, regex: str, vocab: list[str | None], eos: int, walk: list[int]) -> list[list[bool]]:
    """xgrammar's allowed-token mask for ``regex`` over ``vocab`` at the start and after
    each token of ``walk`` (None entries become unreachable placeholder strings)."""
    payload = json.dumps({"regex": regex, "vocab": vocab, "eos": eos, "walk": walk})
    proc = subprocess.run([exe, "-c", _XGRAMMAR_MASKS], input=payload, capture_output=True, text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("@@XGR@@"):
            return json.loads(line[len("@@XGR@@"):])
    raise RuntimeError(f"xgrammar child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


_XGRAMMAR_STRING_CONTROLS = r'''
import json, sys
import xgrammar as xgr
schema = sys.stdin.read()
vocab = [chr(i) for i in range(128)] + ["<eos>"]
info = xgr.TokenizerInfo(vocab, vocab_type=xgr.VocabType.RAW, vocab_size=len(vocab), stop_token_ids=[128])
matcher = xgr.GrammarMatcher(xgr.GrammarCompiler(info).compile_json_schema(schema, any_whitespace=False))
for ch in '{"name": "':
    assert matcher.accept_token(ord(ch)), ch
bitmask = xgr.allocate_token_bitmask(1, len(vocab))
matcher.fill_next_token_bitmask(bitmask, 0)
row = bitmask[0].tolist()
print("@@XGR@@" + json.dumps([c for c in range(32) if (row[c // 32] >> (c % 32)) & 1]))
'''


def xgrammar_json_string_controls(exe: str, schema: dict) -> list[int]:
    """The control characters (code < 32) xgrammar allows right after ``{"name": "`` under
    ``schema`` (compiled with ``any_whitespace=False``, whose separators are ``", "`` and ``": "``)."""
    proc = subprocess.run([exe, "-c", _XGRAMMAR_STRING_CONTROLS], input=json.dumps(schema), capture_output=True,
                          text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("@@XGR@@"):
            return json.loads(line[len("@@XGR@@"):])
    raise RuntimeError(f"xgrammar child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def print_report(report: dict) -> None:
    for name, value in report.items():
        print(f"{name:34s} {value}")
