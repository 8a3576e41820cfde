"""Lab 07-04: what a routing histogram costs under expert parallelism. Your work below the line.

Loads are counted in assignments, i.e. (token, expert) pairs: a token routed to ``k``
experts adds one row of work to each of them. With expert parallelism (EP) every
device owns some experts, and a step ends when the busiest device is done.
"""
from __future__ import annotations

import math  # noqa: F401 - step 6 needs math.ceil

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
    raise NotImplementedError(
        "TODO 1: np.bincount of the flattened ids, minlength=num_experts — see README step 1"
    )


def imbalance(loads: np.ndarray) -> float:
    """Busiest expert over the mean expert: 1.0 is perfect balance."""
    raise NotImplementedError(
        "TODO 2: max load / mean load — see README step 2"
    )


def device_loads(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None) -> np.ndarray:
    """Rows per device when expert ``e`` lives on device ``placement[e]`` (default ``e % num_devices``)."""
    raise NotImplementedError(
        "TODO 3: sum each device's experts' loads; default placement is e % num_devices — see README step 3"
    )


def ep_step_time(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None,
                 time_per_row: float = 1.0) -> float:
    """The step waits for the busiest device: ``max(device_loads) * time_per_row``."""
    raise NotImplementedError(
        "TODO 4: the busiest device's rows times time_per_row — see README step 4"
    )


def parallel_efficiency(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None) -> float:
    """Useful work over paid work: ``sum(loads) / (num_devices * max(device_loads))``."""
    raise NotImplementedError(
        "TODO 5: sum(loads) / (num_devices * busiest device) — see README step 5"
    )


def dropped_tokens(loads: np.ndarray, capacity_factor: float) -> int:
    """Assignments over a fixed per-expert capacity of ``ceil(capacity_factor * sum / E)``."""
    raise NotImplementedError(
        "TODO 6: capacity = ceil(capacity_factor * sum(loads) / E); add up what exceeds it — see README step 6"
    )
