"""Lab 04-01 (your work): one decode query, online softmax, K/V read through a block table.

Shapes follow ``mini_vllm.attention``: q [1, H, D] (one query token, H query heads), a
layer's paged cache [2, num_blocks, block_size, Hkv, D] (index 0 = K, 1 = V), and the
running state ``AttentionState(m [H], l [H], acc [H, D])`` for that single token.

``empty_state`` and ``expand_kv_heads`` are given. Write the three functions below in
order; README.md explains each step.
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
    """Fold one tile of keys into the running state.

    scores [H, T] are this tile's scaled q.k (``-inf`` where masked); values [H, T, D].
    Return the new (m, l, acc). Do not divide by l here.
    """
    raise NotImplementedError(
        "TODO 1: m_new = max(m, max(scores)); alpha = exp(m - m_new); p = exp(scores - m_new); "
        "l = l*alpha + sum(p); acc = acc*alpha + p@values. Guard m_new == -inf (README step 1)"
    )


def gather_block(kv_cache_layer: np.ndarray, block_table, logical_block: int, num_valid: int):
    """K and V of one logical block: rows 0..num_valid-1 of physical block
    ``block_table[logical_block]``, each [num_valid, Hkv, D]."""
    raise NotImplementedError(
        "TODO 2: physical = block_table[logical_block]; return the first num_valid rows of "
        "kv_cache_layer[0, physical] and kv_cache_layer[1, physical] (README step 2)"
    )


def paged_decode_attention(
    q: np.ndarray,
    kv_cache_layer: np.ndarray,
    block_table,
    seq_len: int,
    scale: float | None = None,
    sliding_window: int | None = None,
) -> np.ndarray:
    """Attention of the token at position ``seq_len - 1`` over positions 0..seq_len-1,
    one block at a time. Returns [1, H, D]. With ``sliding_window = W`` a key at
    position p is visible when ``(seq_len - 1) - p < W``."""
    raise NotImplementedError(
        "TODO 3: for each logical block covering [0, seq_len): gather min(block_size, seq_len - start) "
        "rows, score them (scale defaults to D**-0.5), mask the window with -inf, fold with "
        "online_softmax_step; return acc / l as [1, H, D] (README step 3)"
    )
