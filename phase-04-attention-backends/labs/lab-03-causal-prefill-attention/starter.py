"""Lab 04-03 (your work): causal prefill over a paged cache, and chunked prefill.

M query tokens sit at absolute positions start_pos .. start_pos+M-1 of one request; the
runner has already written their K/V into the paged cache, so the cache holds positions
0 .. start_pos+M-1. Query i may see keys 0 .. start_pos+i and nothing later.

Use ``partial_attention`` (one tile -> mergeable state, with an optional causal mask),
``merge_attention_states`` and ``finalize`` from ``mini_vllm.attention``; README.md
walks through each step.
"""
from __future__ import annotations

import numpy as np

from mini_vllm.attention import finalize, merge_attention_states, partial_attention, write_kv  # noqa: F401


def causal_key_counts(start_pos: int, num_queries: int) -> np.ndarray:
    """How many keys each query sees (its own K/V included)."""
    raise NotImplementedError("TODO 1: query i sits at start_pos + i; count the keys 0..start_pos+i (README step 1)")


def compute_slot_mapping(block_table, start_pos: int, num_tokens: int, block_size: int) -> np.ndarray:
    """The write map: flat cache slot of positions start_pos .. start_pos+num_tokens-1."""
    raise NotImplementedError(
        "TODO 2: slot = block_table[pos // block_size] * block_size + pos % block_size (README step 2)"
    )


def classify_tile(q_start: int, q_end: int, k_start: int, k_end: int) -> str:
    """``"skip"``, ``"full"`` or ``"diagonal"`` for a (query tile, key tile) pair,
    positions half-open [start, end)."""
    raise NotImplementedError(
        "TODO 3: skip if the first key is after the last query; full if the last key is at or "
        "before the first query; diagonal otherwise (README step 3)"
    )


def paged_prefill_attention(
    q: np.ndarray,
    kv_cache_layer: np.ndarray,
    block_table,
    start_pos: int,
    scale: float | None = None,
) -> np.ndarray:
    """Causal attention of q [M, H, D] (positions start_pos..start_pos+M-1) over the
    paged cache; returns [M, H, D]."""
    raise NotImplementedError(
        "TODO 4: loop over the blocks covering [0, start_pos+M); classify each as a key tile; "
        "partial_attention (with start_pos/key_offset only on the diagonal); merge; finalize (README step 4)"
    )


def chunked_prefill(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    chunk_sizes,
    kv_cache_layer: np.ndarray,
    block_table,
    scale: float | None = None,
) -> np.ndarray:
    """Prefill N tokens in chunks: per chunk, write its K/V through the slot mapping,
    then attend. Returns [N, H, D]."""
    raise NotImplementedError(
        "TODO 5: for each chunk [start, end): write_kv(cache, compute_slot_mapping(...), k, v), then "
        "paged_prefill_attention(q[start:end], ..., start); concatenate (README step 5)"
    )
