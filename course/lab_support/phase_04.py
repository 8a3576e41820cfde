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
