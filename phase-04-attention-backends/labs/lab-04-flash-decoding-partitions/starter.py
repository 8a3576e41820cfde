"""Lab 04-04 (your work): split-KV (flash-decoding) with a mergeable attention state.

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
    """Unnormalised state of q [M, H, D] over one partition of keys k, v [N, Hkv, D]. README task 1."""
    raise NotImplementedError("TODO 1: summarise one partition (README task 1)")


def merge_states(a: AttentionState, b: AttentionState) -> AttentionState:
    """The state of the union of two disjoint key sets. README task 2."""
    raise NotImplementedError("TODO 2: merge two states (README task 2)")


def split_kv_decode(
    q: np.ndarray,
    kv_cache_layer: np.ndarray,
    block_table,
    seq_len: int,
    num_partitions: int,
    scale: float | None = None,
    order=None,
) -> np.ndarray:
    """Decode attention over a paged cache, split into partitions and merged in order. Returns [1, H, D]. README task 3."""
    raise NotImplementedError("TODO 3: split, attend, merge, normalise (README task 3)")


def to_output_lse(state: AttentionState) -> tuple[np.ndarray, np.ndarray]:
    """vLLM's form of a partial: (normalised output, log-sum-exp). README task 4."""
    raise NotImplementedError("TODO 4: convert a state to vLLM's form (README task 4)")


def merge_output_lse(out_a, lse_a, out_b, lse_b) -> tuple[np.ndarray, np.ndarray]:
    """Merge two partials given in vLLM's (output, lse) form. README task 5."""
    raise NotImplementedError("TODO 5: merge two partials in vLLM's form (README task 5)")


def segment_layout(seq_len: int, num_segments: int, tile_size: int) -> list[tuple[int, int]]:
    """Token range [start, end) of each split-KV segment of the Triton 3D kernel. README task 6."""
    raise NotImplementedError("TODO 6: lay out the segments (README task 6)")


def uses_split_kv(max_query_len: int, num_seqs: int, num_kv_heads: int, batch_invariant: bool = False) -> bool:
    """Whether the Triton backend launches its split-KV (3D) kernel for this batch. README task 7."""
    raise NotImplementedError("TODO 7: decide 2D or 3D (README task 7)")


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_04 import print_segment_report

    print_segment_report(sys.modules[__name__])
