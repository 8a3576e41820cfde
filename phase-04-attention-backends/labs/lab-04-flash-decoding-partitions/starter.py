"""Lab 04-04 (your work): split-KV (flash-decoding) with a mergeable attention state.

Attention of q over a key set K is summarised by ``AttentionState(m, l, acc)``:
m = max score, l = sum exp(s - m), acc = sum exp(s - m) * v (not divided by l).

Shapes follow ``mini_vllm.attention``: q [M, H, D]; k, v [N, Hkv, D]; m, l [M, H];
acc [M, H, D]. Queries here see every key they are given. README.md walks through
each step; write them in order.
"""
from __future__ import annotations

import numpy as np

from mini_vllm.attention import AttentionState  # noqa: F401

MIN_LAUNCH_GRID_SIZE_2D = 128
"""Triton backend constant: the 2D kernel wants at least this many (sequence, KV head)
programs; fewer, and decode switches to the split-KV 3D kernel."""


def attend_partition(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float | None = None) -> AttentionState:
    """Unnormalised state of q over one partition of keys; an empty partition is
    (m = -inf, l = 0, acc = 0)."""
    raise NotImplementedError(
        "TODO 1: scores = q.k * scale (GQA: repeat KV heads); m = max; p = exp(s - m); "
        "return (m, sum p, p @ v) WITHOUT dividing; handle N = 0 (README step 1)"
    )


def merge_states(a: AttentionState, b: AttentionState) -> AttentionState:
    """Rescale both summaries to the joint max and add. A side with m = -inf adds 0."""
    raise NotImplementedError(
        "TODO 2: m = max(ma, mb); weights exp(ma - m), exp(mb - m), with m = -inf treated as 0 "
        "in the exponent; l and acc are the weighted sums (README step 2)"
    )


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
    split into ``num_partitions`` contiguous ranges (np.array_split), merged in
    ``order`` (default 0, 1, 2, ...). Returns [1, H, D]."""
    raise NotImplementedError(
        "TODO 3: np.array_split(np.arange(seq_len), num_partitions); gather each range through the "
        "block table; attend_partition each; merge_states in `order`; divide acc by l (README step 3)"
    )


def to_output_lse(state: AttentionState) -> tuple[np.ndarray, np.ndarray]:
    """vLLM's form of a partial: normalised output and lse = m + log(l)
    (-inf and output 0 for an empty partition)."""
    raise NotImplementedError("TODO 4: out = acc / l (0 where l == 0); lse = m + log(l) (-inf where l == 0) (README step 4)")


def merge_output_lse(out_a, lse_a, out_b, lse_b) -> tuple[np.ndarray, np.ndarray]:
    """Merge two (normalised output, lse) partials."""
    raise NotImplementedError(
        "TODO 5: lse_max = max(lse_a, lse_b); w = exp(lse - lse_max); out = (out_a*w_a + out_b*w_b)/(w_a + w_b); "
        "lse = lse_max + log(w_a + w_b); guard both -inf (README step 5)"
    )


def segment_layout(seq_len: int, num_segments: int, tile_size: int) -> list[tuple[int, int]]:
    """Token range [start, end) of each split-KV segment of the Triton 3D kernel;
    an empty segment is (seq_len, seq_len)."""
    raise NotImplementedError(
        "TODO 6: tiles_per_segment = cdiv(seq_len, num_segments * tile_size); segment s covers "
        "[s*span, (s+1)*span) clipped to seq_len, span = tiles_per_segment * tile_size (README step 6)"
    )


def uses_split_kv(max_query_len: int, num_seqs: int, num_kv_heads: int, batch_invariant: bool = False) -> bool:
    """Whether the Triton backend launches the split-KV (3D) kernel for this batch."""
    raise NotImplementedError(
        "TODO 7: decode-only (max_query_len == 1), num_seqs <= MIN_LAUNCH_GRID_SIZE_2D // num_kv_heads, "
        "and not batch_invariant (README step 7)"
    )
