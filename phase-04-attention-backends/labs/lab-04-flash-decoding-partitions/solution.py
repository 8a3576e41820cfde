"""Lab 04-04 (reference): split-KV (flash-decoding) with a mergeable attention state.

Attention of q over a key set K is summarised by ``AttentionState(m, l, acc)``:
m = max score, l = sum exp(s - m), acc = sum exp(s - m) * v (not divided by l). Two
summaries over disjoint key sets merge exactly, in any order and any tree shape, so a
long decode can be split over partitions that run in parallel and be reduced at the end.

Shapes follow ``mini_vllm.attention``: q [M, H, D]; k, v [N, Hkv, D]; m, l [M, H];
acc [M, H, D]. Queries here see every key they are given (decode: the query is the
last position, so no causal mask is needed).

Upstream does this split in the Triton backend's "3D" kernel: per-segment (max,
expsum, unnormalised acc) stored by
vllm/v1/attention/ops/triton_unified_attention.py:591@0decac0 ("store_segm_reduce_scalars(")
and reduced by vllm/v1/attention/ops/triton_unified_attention.py:646@0decac0 (reduce_segments).
"""
from __future__ import annotations

import numpy as np

from mini_vllm.attention import AttentionState

MIN_LAUNCH_GRID_SIZE_2D = 128
"""Triton backend constant: the 2D kernel wants at least this many (sequence, KV head)
programs; fewer, and decode switches to the split-KV 3D kernel."""


def attend_partition(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float | None = None) -> AttentionState:
    """Unnormalised state of q over one partition of keys. An empty partition is
    (m = -inf, l = 0, acc = 0): the identity of ``merge_states``."""
    num_q, num_heads, head_dim = q.shape
    if k.shape[0] == 0:
        return AttentionState(
            np.full((num_q, num_heads), -np.inf), np.zeros((num_q, num_heads)), np.zeros((num_q, num_heads, head_dim))
        )
    scale = head_dim**-0.5 if scale is None else scale
    group = num_heads // k.shape[1]
    kq = np.repeat(k, group, axis=1)  # [N, H, D]: query head h reads KV head h // group
    vq = np.repeat(v, group, axis=1)
    s = np.einsum("mhd,nhd->mhn", q, kq) * scale
    m = s.max(axis=-1)
    p = np.exp(s - m[..., None])
    return AttentionState(m, p.sum(axis=-1), np.einsum("mhn,nhd->mhd", p, vq))


def merge_states(a: AttentionState, b: AttentionState) -> AttentionState:
    """Rescale both summaries to the joint max and add. A side with m = -inf adds 0."""
    m = np.maximum(a.m, b.m)
    m_ref = np.where(np.isneginf(m), 0.0, m)
    wa = np.exp(a.m - m_ref)
    wb = np.exp(b.m - m_ref)
    return AttentionState(m, a.l * wa + b.l * wb, a.acc * wa[..., None] + b.acc * wb[..., None])


def split_kv_decode(
    q: np.ndarray,
    kv_cache_layer: np.ndarray,
    block_table,
    seq_len: int,
    num_partitions: int,
    scale: float | None = None,
    order=None,
) -> np.ndarray:
    """Decode attention of q [1, H, D] over positions 0..seq_len-1 of a paged cache,
    keys split into ``num_partitions`` contiguous ranges (``np.array_split``: some may
    be empty), each attended independently and merged in ``order`` (a permutation of
    partition indices; default 0, 1, 2, ...). Returns [1, H, D]."""
    block_size = kv_cache_layer.shape[2]
    table = np.asarray(block_table, dtype=np.int64)
    parts = np.array_split(np.arange(seq_len), num_partitions)
    states = []
    for pos in parts:
        blocks, offsets = table[pos // block_size], pos % block_size
        states.append(attend_partition(q, kv_cache_layer[0, blocks, offsets], kv_cache_layer[1, blocks, offsets], scale))
    order = range(num_partitions) if order is None else order
    total = None
    for i in order:
        total = states[i] if total is None else merge_states(total, states[i])
    return total.acc / total.l[..., None]


def to_output_lse(state: AttentionState) -> tuple[np.ndarray, np.ndarray]:
    """vLLM's form of a partial result: the normalised output and the log-sum-exp
    ``lse = m + log(l)`` (``-inf`` for an empty partition, output 0)."""
    out = np.divide(state.acc, state.l[..., None], out=np.zeros_like(state.acc), where=state.l[..., None] > 0)
    with np.errstate(divide="ignore"):
        lse = state.m + np.log(state.l)
    return out, np.where(state.l > 0, lse, -np.inf)


def merge_output_lse(out_a, lse_a, out_b, lse_b) -> tuple[np.ndarray, np.ndarray]:
    """Merge two (normalised output, lse) partials, the algebra of
    vllm/v1/attention/ops/merge_attn_states.py:9@0decac0 (merge_attn_states):
    weights exp(lse_x - lse_max), renormalised."""
    lse_max = np.maximum(lse_a, lse_b)
    ref = np.where(np.isneginf(lse_max), 0.0, lse_max)
    wa, wb = np.exp(lse_a - ref), np.exp(lse_b - ref)
    total = wa + wb
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (out_a * wa[..., None] + out_b * wb[..., None]) / total[..., None]
        lse = ref + np.log(total)
    return np.where(total[..., None] > 0, out, 0.0), np.where(total > 0, lse, -np.inf)


def segment_layout(seq_len: int, num_segments: int, tile_size: int) -> list[tuple[int, int]]:
    """Token range [start, end) of each split-KV segment in the Triton 3D kernel:
    every segment gets cdiv(seq_len, num_segments * tile_size) tiles; a segment that
    starts at or past seq_len is empty (start == end == seq_len)."""
    tiles_per_segment = -(-seq_len // (num_segments * tile_size))
    span = tiles_per_segment * tile_size
    return [(min(s * span, seq_len), min((s + 1) * span, seq_len)) for s in range(num_segments)]


def uses_split_kv(max_query_len: int, num_seqs: int, num_kv_heads: int, batch_invariant: bool = False) -> bool:
    """Whether the Triton backend launches the split-KV (3D) kernel for this batch:
    decode-only, at most 128 // num_kv_heads sequences, batch invariance off (no CUDA
    graphs: with them the threshold snaps to the nearest capture size)."""
    threshold = MIN_LAUNCH_GRID_SIZE_2D // num_kv_heads
    return max_query_len == 1 and num_seqs <= threshold and not batch_invariant


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_04 import print_segment_report

    print_segment_report(sys.modules[__name__])
