"""Lab 04-03 (your work): causal prefill over a paged cache, and chunked prefill.

M query tokens sit at absolute positions start_pos .. start_pos+M-1 of one request; the
runner has already written their K/V into the paged cache, so the cache holds positions
0 .. start_pos+M-1. Query i may see keys 0 .. start_pos+i and nothing later.

The kernel shape is the one FlashAttention-style prefill uses: an outer loop over key
tiles (here: one KV-cache block each), every tile folded into a mergeable
(max, denominator, accumulator) state. A tile entirely at or before the earliest query
needs no mask; only tiles that overlap the diagonal do. The running state and the merge
come from ``mini_vllm.attention`` (lab-01 and lab-04 write their own).
"""
from __future__ import annotations

import numpy as np

from mini_vllm.attention import finalize, merge_attention_states, partial_attention, write_kv


def causal_key_counts(start_pos: int, num_queries: int) -> np.ndarray:
    """How many keys each query of the chunk sees, as an int array. README task 1."""
    raise NotImplementedError("TODO 1: count each query's keys (README task 1)")


def compute_slot_mapping(block_table, start_pos: int, num_tokens: int, block_size: int) -> np.ndarray:
    """The write map: flat cache slot of positions start_pos .. start_pos+num_tokens-1. README task 2."""
    raise NotImplementedError("TODO 2: build the write map (README task 2)")


def classify_tile(q_start: int, q_end: int, k_start: int, k_end: int) -> str:
    """'skip', 'full' or 'diagonal' for a (query tile, key tile) pair of half-open ranges. README task 3."""
    raise NotImplementedError("TODO 3: classify one tile pair (README task 3)")


def paged_prefill_attention(
    q: np.ndarray,
    kv_cache_layer: np.ndarray,
    block_table,
    start_pos: int,
    scale: float | None = None,
) -> np.ndarray:
    """Causal attention of M queries at start_pos.. over the paged cache; returns [M, H, D]. README task 4."""
    raise NotImplementedError("TODO 4: attend tile by tile over the cache (README task 4)")


def chunked_prefill(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    chunk_sizes,
    kv_cache_layer: np.ndarray,
    block_table,
    scale: float | None = None,
) -> np.ndarray:
    """Prefill a prompt chunk by chunk through the cache; returns [N, H, D]. README task 5."""
    raise NotImplementedError("TODO 5: write then attend, chunk by chunk (README task 5)")


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_04 import print_prefill_report

    print_prefill_report(sys.modules[__name__])
