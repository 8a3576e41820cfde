"""Lab 09-03 reference: greedy decoding and beam search over any next-token model.

The model is a function from a token list (prompt plus output so far) to log-probabilities
over the vocabulary. ``MarkovLM`` builds one from a transition table, small enough to
enumerate every sequence, which is how the tests check beam search exactly.
Beam search follows the pinned vLLM's API-layer loop
(vllm/entrypoints/generate/beam_search/offline.py:27@0decac0 (BeamSearchOfflineMixin.beam_search)).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

LogprobFn = Callable[[list[int]], np.ndarray]


class MarkovLM:
    """Next-token probabilities that depend only on the last token: ``table[last]`` maps
    token id -> probability; tokens missing from a row have probability 0."""

    def __init__(self, table: dict[int, dict[int, float]], vocab_size: int) -> None:
        self.table, self.vocab_size = table, vocab_size

    def __call__(self, tokens: list[int]) -> np.ndarray:
        probs = np.zeros(self.vocab_size)
        for t, p in self.table.get(tokens[-1], {}).items():
            probs[t] = p
        with np.errstate(divide="ignore"):
            return np.log(probs)


# Tokens of the garden-path fixture.
S, A, B, C, D, EOS = range(6)
GARDEN_PATH = MarkovLM({S: {A: 0.6, B: 0.4}, A: {C: 0.51, D: 0.49}, B: {C: 0.9, D: 0.1},
                        C: {EOS: 1.0}, D: {EOS: 1.0}}, vocab_size=6)


def beam_score(tokens: list[int], cum_logprob: float, eos_token_id: int | None, length_penalty: float = 1.0) -> float:
    """Cumulative log-probability over ``seq_len ** length_penalty``; ``seq_len`` counts
    every token (prompt included) except a final EOS."""
    seq_len = len(tokens) - (eos_token_id is not None and tokens[-1] == eos_token_id)
    return cum_logprob / seq_len ** length_penalty


def greedy_decode(logprob_fn: LogprobFn, prompt: list[int], max_tokens: int,
                  eos_token_id: int | None = None) -> tuple[list[int], float]:
    """Take the most likely token (lowest id on ties) until EOS or ``max_tokens``;
    return the output tokens and their summed log-probability."""
    tokens, total = list(prompt), 0.0
    for _ in range(max_tokens):
        lp = logprob_fn(tokens)
        t = int(np.argmax(lp))
        tokens.append(t)
        total += float(lp[t])
        if t == eos_token_id:
            break
    return tokens[len(prompt):], total


def beam_search(logprob_fn: LogprobFn, prompt: list[int], beam_width: int, max_tokens: int,
                eos_token_id: int | None = None, length_penalty: float = 1.0) -> list[tuple[list[int], float]]:
    """The ``beam_width`` best hypotheses, best first, as (output tokens, summed log-prob).

    Each step every live beam offers its ``2 * beam_width`` most likely next tokens (ties:
    lower id first; impossible tokens skipped). A child ending in EOS is finished and
    leaves the live set; the other children are ranked by ``beam_score`` and the best
    ``beam_width`` stay live. At the end, finished and live hypotheses compete together.
    """
    n = len(prompt)

    def key(h):
        return beam_score(h[0], h[1], eos_token_id, length_penalty)

    live, finished = [(list(prompt), 0.0)], []
    for _ in range(max_tokens):
        if not live:
            break
        children = []
        for tokens, total in live:
            lp = logprob_fn(tokens)
            for t in np.argsort(-lp, kind="stable")[: 2 * beam_width].tolist():
                if math.isinf(lp[t]):
                    continue
                child = (tokens + [t], total + float(lp[t]))
                (finished if t == eos_token_id else children).append(child)
        live = sorted(children, key=key, reverse=True)[:beam_width]
    best = sorted(finished + live, key=key, reverse=True)[:beam_width]
    return [(tokens[n:], total) for tokens, total in best]


def report() -> dict[str, object]:
    greedy = greedy_decode(GARDEN_PATH, [S], 3, EOS)
    beam = beam_search(GARDEN_PATH, [S], 2, 3, EOS, length_penalty=0.0)[0]
    return {"greedy": greedy[0], "greedy_prob": round(math.exp(greedy[1]), 4),
            "beam_2": beam[0], "beam_2_prob": round(math.exp(beam[1]), 4)}


if __name__ == "__main__":
    for name, value in report().items():
        print(f"{name:12s} {value}")
