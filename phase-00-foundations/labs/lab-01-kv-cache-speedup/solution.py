"""Lab 00-01 reference: generation with and without a KV cache.

The toy model (``compute_kv``, ``next_token``, ``KVWork``) is given in
``course/lab_support/phase_00.py``. ``compute_kv`` is the only expensive call and it
charges one work unit per token it processes, so the two generators can be compared by an
exact count instead of a stopwatch. ``next_token`` attends from the last token over every
K/V row it is handed, so both generators must hand it the same rows (same tokens, same
positions) to produce the same text.

Upstream, the write half of the cache is one call per attention layer:
vllm/model_executor/layers/attention/attention.py:498@0decac0 ("kv_cache_dummy_dep = unified_kv_cache_update(")
stores the step's new K/V, and the attention kernel reads all earlier ones.
"""
from __future__ import annotations

import numpy as np

from course.lab_support.phase_00 import KVWork, compute_kv, next_token, print_work_table


def generate_no_cache(prompt: list[int], n_new: int) -> tuple[list[int], int]:
    """Every step recomputes K/V for the whole sequence so far, then picks one token.

    Returns ``(tokens, work units)``: the prompt followed by ``n_new`` new tokens, and
    the units one ``KVWork`` counted. Step ``i`` (from 0) processes ``len(prompt) + i``
    tokens.
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
    print_work_table(generate_no_cache, generate_with_cache)
