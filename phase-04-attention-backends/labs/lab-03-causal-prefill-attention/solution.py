"""Lab 04-03 (reference): causal prefill over a paged cache, and chunked prefill.

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
    """How many keys each query sees: query i at position start_pos + i sees
    start_pos + i + 1 keys (its own K/V included, written before attention runs)."""
    return start_pos + np.arange(num_queries) + 1


def compute_slot_mapping(block_table, start_pos: int, num_tokens: int, block_size: int) -> np.ndarray:
    """The write map: flat cache slot of positions start_pos .. start_pos+num_tokens-1.

    Upstream computes the same ``block_id * block_size + offset`` in
    vllm/v1/worker/block_table.py:141@0decac0 (BlockTable.compute_slot_mapping).
    """
    pos = start_pos + np.arange(num_tokens)
    return np.asarray(block_table, dtype=np.int64)[pos // block_size] * block_size + pos % block_size


def classify_tile(q_start: int, q_end: int, k_start: int, k_end: int) -> str:
    """Which work a (query tile, key tile) pair needs, positions half-open [start, end).

    ``"skip"``: every key is after every query; ``"full"``: every key is at or before the
    earliest query, so no mask; ``"diagonal"``: the tile straddles the causal boundary.
    """
    if k_start > q_end - 1:
        return "skip"
    if k_end - 1 <= q_start:
        return "full"
    return "diagonal"


def paged_prefill_attention(
    q: np.ndarray,
    kv_cache_layer: np.ndarray,
    block_table,
    start_pos: int,
    scale: float | None = None,
) -> np.ndarray:
    """Causal attention of q [M, H, D] (positions start_pos..start_pos+M-1) over the
    paged cache; returns [M, H, D]. One key tile per cache block, masked only on the
    diagonal."""
    num_q = q.shape[0]
    block_size = kv_cache_layer.shape[2]
    seq_len = start_pos + num_q
    state = None
    for logical_block in range(-(-seq_len // block_size)):
        k_start = logical_block * block_size
        k_end = min(k_start + block_size, seq_len)
        kind = classify_tile(start_pos, seq_len, k_start, k_end)
        if kind == "skip":
            continue
        physical = int(block_table[logical_block])
        k = kv_cache_layer[0, physical, : k_end - k_start]
        v = kv_cache_layer[1, physical, : k_end - k_start]
        if kind == "full":
            part = partial_attention(q, k, v, scale)
        else:
            part = partial_attention(q, k, v, scale, start_pos=start_pos, key_offset=k_start)
        state = part if state is None else merge_attention_states(state, part)
    return finalize(state)


def chunked_prefill(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    chunk_sizes,
    kv_cache_layer: np.ndarray,
    block_table,
    scale: float | None = None,
) -> np.ndarray:
    """Prefill a prompt of N tokens in chunks (sizes summing to N), as the scheduler
    would across steps: per chunk, write its K/V through the slot mapping, then attend.
    Returns the [N, H, D] outputs of all chunks, in order."""
    block_size = kv_cache_layer.shape[2]
    outs = []
    start = 0
    for size in chunk_sizes:
        end = start + size
        slots = compute_slot_mapping(block_table, start, size, block_size)
        write_kv(kv_cache_layer, slots, k[start:end], v[start:end])
        outs.append(paged_prefill_attention(q[start:end], kv_cache_layer, block_table, start, scale))
        start = end
    return np.concatenate(outs, axis=0)


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_04 import print_prefill_report

    print_prefill_report(sys.modules[__name__])
