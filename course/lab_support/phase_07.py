"""Scaffolding phase 07's labs hand the learner: routings to measure and the cost model's kernel list.

Written once here so that a lab's ``starter.py`` and ``solution.py`` import the same code
instead of carrying two copies.
"""
from __future__ import annotations

import numpy as np

from mini_vllm.moe import fused_topk

# --------------------------------------------------------------------- lab 07-04: routings


def balanced_routing(num_tokens: int, num_experts: int, top_k: int) -> np.ndarray:
    """A perfectly even ``(T, k)`` routing: token ``t`` uses experts ``t, t+s, t+2s, ... (mod E)``."""
    stride = num_experts // top_k
    t = np.arange(num_tokens)[:, None]
    return ((t + stride * np.arange(top_k)[None, :]) % num_experts).astype(np.int32)


def hot_expert_routing(num_tokens: int, num_experts: int, hot_expert: int = 0) -> np.ndarray:
    """Top-2 where every token picks ``hot_expert`` plus one of the others in turn.

    Top-k ids are distinct per token, so this is the hottest an expert can get with
    ``k = 2``: it sees every token, half of all assignments.
    """
    others = np.array([e for e in range(num_experts) if e != hot_expert])
    second = others[np.arange(num_tokens) % len(others)]
    return np.stack([np.full(num_tokens, hot_expert), second], axis=1).astype(np.int32)


def random_routing(num_tokens: int, num_experts: int, top_k: int, seed: int = 0) -> np.ndarray:
    """Top-k of i.i.d. Gaussian router logits: a healthy router, statistically balanced."""
    logits = np.random.default_rng(seed).standard_normal((num_tokens, num_experts))
    return fused_topk(logits, top_k)[1]
