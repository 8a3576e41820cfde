"""Lab 00-01 reference: generation with and without a KV cache.

A one-layer, one-head toy attention model. ``compute_kv`` is the only expensive call and
it charges one work unit per token it processes, so the two generators can be compared
by an exact count instead of a stopwatch. ``next_token`` attends from the last token
over every K/V row it is handed, so both generators must hand it the same rows (same
tokens, same positions) to produce the same text.

Upstream, the write half of the cache is one call per attention layer:
vllm/model_executor/layers/attention/attention.py:498@0decac0 ("kv_cache_dummy_dep = unified_kv_cache_update(")
stores the step's new K/V, and the attention kernel reads all earlier ones.
"""
from __future__ import annotations

import numpy as np

# --- the toy model (given; identical in starter.py) ---------------------------------

VOCAB_SIZE = 64
HEAD_DIM = 8
_rng = np.random.default_rng(0)
_W_K = _rng.standard_normal((VOCAB_SIZE, HEAD_DIM))
_W_V = _rng.standard_normal((VOCAB_SIZE, HEAD_DIM))
_W_Q = _rng.standard_normal((VOCAB_SIZE, HEAD_DIM))
_W_OUT = _rng.standard_normal((HEAD_DIM, VOCAB_SIZE))
_FREQS = 1.0 / (100.0 ** (np.arange(HEAD_DIM) / HEAD_DIM))


class KVWork:
    """Counts K/V computations: one unit per token pushed through ``compute_kv``."""

    def __init__(self) -> None:
        self.units = 0


def _position_code(positions) -> np.ndarray:
    """Position enters Q, K and V additively, so a token's K/V depend on where it sits."""
    return np.sin(np.asarray(positions, dtype=np.float64)[:, None] * _FREQS[None, :])


def compute_kv(token_ids, positions, work: KVWork) -> tuple[np.ndarray, np.ndarray]:
    """K and V rows ``[n, HEAD_DIM]`` for ``n`` tokens at the given positions.

    Elementwise only (no matmul), so a row is bit-identical whether it was computed
    alone or inside a batch: the cached and uncached runs can be compared exactly.
    """
    token_ids = np.asarray(token_ids, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    if token_ids.shape != positions.shape or token_ids.ndim != 1:
        raise ValueError("compute_kv takes two 1-D sequences of the same length")
    work.units += len(token_ids)
    code = _position_code(positions)
    return _W_K[token_ids] + 2.0 * code, _W_V[token_ids] + code


def next_token(token_ids, keys: np.ndarray, values: np.ndarray) -> int:
    """Greedy next token: the last token's query attends over all ``keys``/``values``.

    Causal by construction: the K/V rows passed in are exactly the tokens so far.
    """
    n = len(token_ids)
    if keys.shape != (n, HEAD_DIM) or values.shape != (n, HEAD_DIM):
        raise ValueError(
            f"next_token needs one K and one V row per token: {n} tokens, "
            f"got keys {keys.shape} and values {values.shape}"
        )
    q = _W_Q[token_ids[-1]] + 2.0 * _position_code([n - 1])[0]
    scores = keys @ q / np.sqrt(HEAD_DIM)
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return int(np.argmax((weights @ values) @ _W_OUT))


# --- the lab --------------------------------------------------------------------------


def generate_no_cache(prompt: list[int], n_new: int) -> tuple[list[int], int]:
    """Every step recomputes K/V for the whole sequence so far, then picks one token.

    Step ``i`` (from 0) processes ``len(prompt) + i`` tokens.
    """
    work = KVWork()
    tokens = list(prompt)
    for _ in range(n_new):
        keys, values = compute_kv(tokens, range(len(tokens)), work)
        tokens.append(next_token(tokens, keys, values))
    return tokens, work.units


def generate_with_cache(prompt: list[int], n_new: int) -> tuple[list[int], int]:
    """Prefill the prompt's K/V once, then add one row per new token.

    Convention of this lab: a token's K/V is computed the moment it joins the sequence,
    so the total is ``len(prompt) + n_new``. A real engine skips the very last token
    (nothing will ever attend to it), which is the ``- 1`` lab 01-04 measures.
    """
    work = KVWork()
    tokens = list(prompt)
    keys, values = compute_kv(tokens, range(len(tokens)), work)
    for _ in range(n_new):
        tok = next_token(tokens, keys, values)
        tokens.append(tok)
        k, v = compute_kv([tok], [len(tokens) - 1], work)
        keys, values = np.vstack([keys, k]), np.vstack([values, v])
    return tokens, work.units


if __name__ == "__main__":
    prompt = [3, 14, 15, 9, 26]
    print(f"{'n_new':>6} {'no cache':>9} {'cached':>7} {'ratio':>7}")
    for n in (10, 100, 1000):
        toks_a, w_a = generate_no_cache(prompt, n)
        toks_b, w_b = generate_with_cache(prompt, n)
        assert toks_a == toks_b
        print(f"{n:>6} {w_a:>9} {w_b:>7} {w_a / w_b:>7.1f}")
