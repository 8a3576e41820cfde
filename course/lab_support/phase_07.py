"""Scaffolding phase 07's labs hand the learner: routings to measure and the cost model's kernel list.

Written once here so that a lab's ``starter.py`` and ``solution.py`` import the same code
instead of carrying two copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mini_vllm.config import ModelConfig
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


# --------------------------------------------------------------------- lab 07-02: the cost model's kernels

CATEGORIES = ("experts", "permute", "router", "attention", "gemm", "other")


@dataclass(frozen=True)
class Kernel:
    """One kernel launch of the cost model: its profiler category, a name, its work."""

    category: str
    name: str
    flops: float
    bytes: float


def step_kernels(model: ModelConfig, num_tokens: int, context_len: int,
                 moe_block_kernels: Callable[..., list[Kernel]], dtype_bytes: int = 2) -> list[Kernel]:
    """Every kernel of one decode step: per layer the attention block + ``moe_block_kernels``, then the head.

    The lab passes its own ``moe_block_kernels(model, num_tokens, dtype_bytes)`` in.
    """
    T, H, V, dt = num_tokens, model.hidden_size, model.vocab_size, dtype_bytes
    q, kv, hd = model.num_heads, model.num_kv_heads, model.head_dim
    qkv = (q + 2 * kv) * hd
    layer = [
        Kernel("other", "fused_add_rms_norm", 0, 3 * T * H * dt),
        Kernel("gemm", "qkv_proj", 2 * T * H * qkv, (H * qkv + T * H + T * qkv) * dt),
        Kernel("other", "rotary_embedding", 0, 2 * T * (q + kv) * hd * dt),
        Kernel("attention", "reshape_and_cache", 0, 2 * T * 2 * kv * hd * dt),
        Kernel("attention", "attention", 4 * T * context_len * q * hd,
               (T * context_len * 2 * kv * hd + 2 * T * q * hd) * dt),
        Kernel("gemm", "o_proj", 2 * T * q * hd * H, (q * hd * H + T * q * hd + T * H) * dt),
        Kernel("other", "fused_add_rms_norm", 0, 3 * T * H * dt),
    ] + moe_block_kernels(model, num_tokens, dtype_bytes)
    head = [
        Kernel("other", "embedding", 0, 2 * T * H * dt),
        Kernel("other", "final_norm", 0, 3 * T * H * dt),
        Kernel("gemm", "lm_head", 2 * T * H * V, (H * V + T * H + T * V) * dt),
        Kernel("other", "sampler", 0, T * V * 4),
    ]
    return layer * model.num_layers + head
