"""Lab 04-01 (reference): one decode query, online softmax, K/V read through a block table.

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
    """Fold one tile of keys into the running state.

    scores [H, T] are this tile's scaled q.k (``-inf`` where masked); values [H, T, D].
    The old accumulator and denominator were summed under ``exp(. - m_old)``; moving
    them to the new max multiplies both by ``alpha = exp(m_old - m_new)``. When every
    score seen so far is ``-inf``, ``m_new`` is ``-inf`` and ``m_old - m_new`` would be
    ``-inf - -inf = nan``; exponentiating against 0 instead keeps the state empty.
    """
    m_new = np.maximum(state.m, scores.max(axis=-1))
    m_ref = np.where(np.isneginf(m_new), 0.0, m_new)
    alpha = np.exp(state.m - m_ref)
    p = np.exp(scores - m_ref[:, None])
    l_new = state.l * alpha + p.sum(axis=-1)
    acc_new = state.acc * alpha[:, None] + np.einsum("ht,htd->hd", p, values)
    return AttentionState(m_new, l_new, acc_new)


def gather_block(kv_cache_layer: np.ndarray, block_table, logical_block: int, num_valid: int):
    """K and V of one logical block: rows 0..num_valid-1 of physical block
    ``block_table[logical_block]``, each [num_valid, Hkv, D]."""
    physical = int(block_table[logical_block])
    return (
        kv_cache_layer[0, physical, :num_valid],
        kv_cache_layer[1, physical, :num_valid],
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
    one block at a time. Returns [1, H, D].

    With ``sliding_window = W`` a key at position p is visible when
    ``(seq_len - 1) - p < W``, the rule of
    vllm/v1/attention/ops/triton_attention_helpers.py:296@0decac0 ("seq_mask = seq_mask & ((query_abs_pos - seq_offset) < SLIDING_WINDOW)").
    Blocks wholly outside the window are still visited (and fully masked), which is
    what makes the ``-inf`` guard in ``online_softmax_step`` necessary.
    """
    num_heads, head_dim = q.shape[1], q.shape[2]
    block_size = kv_cache_layer.shape[2]
    scale = head_dim**-0.5 if scale is None else scale
    query_pos = seq_len - 1
    state = empty_state(num_heads, head_dim)
    for logical_block in range(-(-seq_len // block_size)):
        start = logical_block * block_size
        num_valid = min(block_size, seq_len - start)
        k, v = gather_block(kv_cache_layer, block_table, logical_block, num_valid)
        scores = np.einsum("hd,htd->ht", q[0], expand_kv_heads(k, num_heads)) * scale
        if sliding_window is not None:
            key_pos = start + np.arange(num_valid)
            scores = np.where(query_pos - key_pos < sliding_window, scores, -np.inf)
        state = online_softmax_step(state, scores, expand_kv_heads(v, num_heads))
    return (state.acc / state.l[:, None])[None]


if __name__ == "__main__":
    from course.lab_support.phase_04 import print_hand_trace

    print_hand_trace(online_softmax_step)
