"""Scaffolding phase 04's labs hand the learner: trace and table printers.

Each lab's ``__main__`` block passes its own functions in, so ``python starter.py`` and
``python solution.py`` print the same report from whichever implementation they hold,
and the printing code exists once.
"""
from __future__ import annotations

import numpy as np

from mini_vllm.attention import AttentionState

# Lab 04-01's two-block example: one head, D = 1, (scores, values) per block.
HAND_TRACE_BLOCKS = (([1.0, 2.0], [10.0, 20.0]), ([3.0, 0.0], [30.0, 40.0]))


def hand_trace(online_softmax_step) -> list[tuple[float, float, float, float]]:
    """(m, alpha, l, acc) after each block of ``HAND_TRACE_BLOCKS``, folded by the given step."""
    state = AttentionState(np.array([-np.inf]), np.zeros(1), np.zeros((1, 1)))
    rows = []
    for scores, values in HAND_TRACE_BLOCKS:
        m_old = state.m[0]
        state = online_softmax_step(state, np.array([scores]), np.array([values])[..., None])
        alpha = float(np.exp(m_old - state.m[0])) if np.isfinite(m_old) else 0.0
        rows.append((float(state.m[0]), alpha, float(state.l[0]), float(state.acc[0, 0])))
    return rows


def print_hand_trace(online_softmax_step) -> None:
    for i, (m, alpha, l, acc) in enumerate(hand_trace(online_softmax_step), 1):
        print(f"after block {i}: m={m:.4f} alpha={alpha:.4f} l={l:.4f} acc={acc:.4f} out={acc / l:.4f}")


def print_selection_rows(lab) -> None:
    """Lab 04-02: the backend each of six common set-ups gets, and its candidate list."""
    cfg, dev = lab.SelectorConfig, lab.CudaDevice
    rows = [
        ("H100 bf16 head 128", cfg(128, "bfloat16"), dev((9, 0))),
        ("B200 bf16 head 128", cfg(128, "bfloat16"), dev((10, 0))),
        ("H100 fp32 head 128", cfg(128, "float32"), dev((9, 0))),
        ("T4 fp16 head 128", cfg(128, "float16"), dev((7, 5))),
        ("A100 bf16 head 576 MLA", cfg(576, "bfloat16", use_mla=True), dev((8, 0))),
        ("H100 bf16 head 576 MLA", cfg(576, "bfloat16", use_mla=True), dev((9, 0))),
    ]
    for label, c, d in rows:
        print(f"{label:24s} -> {lab.select_backend(c, d):15s} of {lab.valid_backends(c, d)}")


def tile_census(classify_tile, num_tokens: int, tile: int) -> dict[str, int]:
    """Lab 04-03: count tile kinds for a one-shot prefill of num_tokens, square tiles of ``tile``."""
    counts = {"skip": 0, "full": 0, "diagonal": 0}
    for qs in range(0, num_tokens, tile):
        for ks in range(0, num_tokens, tile):
            counts[classify_tile(qs, min(qs + tile, num_tokens), ks, min(ks + tile, num_tokens))] += 1
    return counts


def print_prefill_report(lab) -> None:
    """Lab 04-03: key counts, a slot mapping and the tile census of a 1024-token prefill."""
    print("key counts, start_pos=5, M=4:", lab.causal_key_counts(5, 4).tolist())
    print("slots, table [3, 1, 7], block 4, positions 5..9:", lab.compute_slot_mapping([3, 1, 7], 5, 5, 4).tolist())
    print("tiles for a 1024-token prefill, 16x16 tiles:", tile_census(lab.classify_tile, 1024, 16))


def print_segment_report(lab) -> None:
    """Lab 04-04: the Triton 3D kernel's segments for two lengths, and its split threshold."""
    for n in (1000, 100):
        used = [s for s in lab.segment_layout(n, 16, 16) if s[1] > s[0]]
        print(f"seq_len={n}: {len(used)} non-empty segments of 16, first {used[0]}, last {used[-1]}")
    print("split-KV threshold, 8 KV heads:", lab.MIN_LAUNCH_GRID_SIZE_2D // 8, "sequences")
