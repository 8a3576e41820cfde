"""Lab 07-04 reference: what a routing histogram costs under expert parallelism.

Loads are counted in assignments, i.e. (token, expert) pairs: a token routed to ``k``
experts adds one row of work to each of them. With expert parallelism (EP) every
device owns some experts, and a step ends when the busiest device is done.
"""
from __future__ import annotations

import math

import numpy as np

from mini_vllm.moe import fused_topk


# ---------------------------------------------------------------- routings the tests use


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


# ---------------------------------------------------------------- your diagnostics


def expert_loads(topk_ids: np.ndarray, num_experts: int) -> np.ndarray:
    """Assignments per expert: the routing histogram, length ``num_experts``."""
    return np.bincount(np.asarray(topk_ids).reshape(-1), minlength=num_experts)


def imbalance(loads: np.ndarray) -> float:
    """Busiest expert over the mean expert: 1.0 is perfect balance."""
    loads = np.asarray(loads)
    return float(loads.max() / loads.mean())


def device_loads(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None) -> np.ndarray:
    """Rows per device when expert ``e`` lives on device ``placement[e]`` (default ``e % num_devices``)."""
    loads = np.asarray(loads)
    if placement is None:
        placement = np.arange(len(loads)) % num_devices
    return np.bincount(np.asarray(placement), weights=loads, minlength=num_devices).astype(loads.dtype)


def ep_step_time(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None,
                 time_per_row: float = 1.0) -> float:
    """The step waits for the busiest device: ``max(device_loads) * time_per_row``."""
    return float(device_loads(loads, num_devices, placement).max() * time_per_row)


def parallel_efficiency(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None) -> float:
    """Useful work over paid work: ``sum(loads) / (num_devices * max(device_loads))``."""
    return float(np.sum(loads) / (num_devices * device_loads(loads, num_devices, placement).max()))


def dropped_tokens(loads: np.ndarray, capacity_factor: float) -> int:
    """Assignments over a fixed per-expert capacity of ``ceil(capacity_factor * sum / E)``."""
    loads = np.asarray(loads)
    capacity = math.ceil(capacity_factor * loads.sum() / len(loads))
    return int(np.maximum(loads - capacity, 0).sum())
