"""Lab 00-01: generation with and without a KV cache. Your work: the two functions below.

The toy model you call (``compute_kv``, ``next_token``, ``KVWork``) is given in
``course/lab_support/phase_00.py``; the README's tasks say what each function must return.
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
    raise NotImplementedError("TODO 1: generate without a cache, recomputing every K/V each step (README task 1)")


def generate_with_cache(prompt: list[int], n_new: int) -> tuple[list[int], int]:
    """Prefill the prompt's K/V once, then add one row per new token.

    Convention of this lab: a token's K/V is computed the moment it joins the sequence,
    so the total is ``len(prompt) + n_new``. A real engine skips the very last token
    (nothing will ever attend to it), which is the ``- 1`` lab 01-04 measures.
    """
    raise NotImplementedError("TODO 2: generate with a cache, one new K/V row per step (README task 2)")


if __name__ == "__main__":
    print_work_table(generate_no_cache, generate_with_cache)
