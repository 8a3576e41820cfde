"""Lab 04-01 (your work): one decode query, online softmax, K/V read through a block table.

Shapes follow ``mini_vllm.attention``: q [1, H, D] (one query token, H query heads), a
layer's paged cache [2, num_blocks, block_size, Hkv, D] (index 0 = K, 1 = V), and the
running state ``AttentionState(m [H], l [H], acc [H, D])`` for that single token.

The loop is the one every paged decode kernel runs per (sequence, head): fetch one
block's K/V through the block table, score it, fold it into (max, denominator,
accumulator). Upstream's Triton kernel does exactly this fold in
vllm/v1/attention/ops/triton_attention_helpers.py:361@0decac0 (softmax_step).
"""
from __future__ import annotations

import numpy as np

from mini_vllm.attention import AttentionState


def empty_state(num_heads: int, head_dim: int) -> AttentionState:
    """The state before any key: max -inf, denominator 0, accumulator 0."""
    return AttentionState(
        np.full(num_heads, -np.inf), np.zeros(num_heads), np.zeros((num_heads, head_dim))
    )


def expand_kv_heads(x: np.ndarray, num_heads: int) -> np.ndarray:
    """[T, Hkv, D] -> [H, T, D]: query head h reads KV head h // (H // Hkv) (GQA)."""
    group = num_heads // x.shape[1]
    return np.repeat(x, group, axis=1).transpose(1, 0, 2)


def online_softmax_step(state: AttentionState, scores: np.ndarray, values: np.ndarray) -> AttentionState:
    """Fold one tile of keys (scores [H, T], values [H, T, D]) into the running state.

    Contract and hints: README task 1.
    """
    raise NotImplementedError("TODO 1: fold one tile into the running state (README task 1)")


def gather_block(kv_cache_layer: np.ndarray, block_table, logical_block: int, num_valid: int):
    """K and V of the first num_valid rows of one logical block, each [num_valid, Hkv, D].

    Contract and hints: README task 2.
    """
    raise NotImplementedError("TODO 2: read one logical block through the table (README task 2)")


def paged_decode_attention(
    q: np.ndarray,
    kv_cache_layer: np.ndarray,
    block_table,
    seq_len: int,
    scale: float | None = None,
    sliding_window: int | None = None,
) -> np.ndarray:
    """Attention of the token at position seq_len - 1 over positions 0..seq_len-1. Returns [1, H, D].

    Contract and hints: README task 3.
    """
    raise NotImplementedError("TODO 3: stream the sequence block by block (README task 3)")


if __name__ == "__main__":
    from course.lab_support.phase_04 import print_hand_trace

    print_hand_trace(online_softmax_step)
