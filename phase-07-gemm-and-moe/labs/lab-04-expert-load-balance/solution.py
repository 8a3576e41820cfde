"""Lab 07-04 reference: what a routing histogram costs under expert parallelism.

Loads are counted in assignments, i.e. (token, expert) pairs: a token routed to ``k``
experts adds one row of work to each of them. With expert parallelism (EP) every
device owns some experts, and a step ends when the busiest device is done.
"""
from __future__ import annotations

import math

import numpy as np

from course.lab_support.phase_07 import balanced_routing, hot_expert_routing, random_routing  # noqa: F401 (given)


# ---------------------------------------------------------------- your diagnostics


def expert_loads(topk_ids: np.ndarray, num_experts: int) -> np.ndarray:
    """The routing histogram: how many (token, expert) assignments each of ``num_experts`` got."""
    return np.bincount(np.asarray(topk_ids).reshape(-1), minlength=num_experts)


def imbalance(loads: np.ndarray) -> float:
    """How much busier the busiest expert is than an average one: 1.0 is perfect balance."""
    loads = np.asarray(loads)
    return float(loads.max() / loads.mean())


def device_loads(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None) -> np.ndarray:
    """Rows each of ``num_devices`` devices processes when expert ``e`` lives on device ``placement[e]``."""
    loads = np.asarray(loads)
    if placement is None:
        placement = np.arange(len(loads)) % num_devices
    return np.bincount(np.asarray(placement), weights=loads, minlength=num_devices).astype(loads.dtype)


def ep_step_time(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None,
                 time_per_row: float = 1.0) -> float:
    """Time of one expert-parallel step, in units of ``time_per_row``."""
    return float(device_loads(loads, num_devices, placement).max() * time_per_row)


def parallel_efficiency(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None) -> float:
    """Share of the devices' paid time spent on rows: 1.0 when every device is equally busy."""
    return float(np.sum(loads) / (num_devices * device_loads(loads, num_devices, placement).max()))


def dropped_tokens(loads: np.ndarray, capacity_factor: float) -> int:
    """Assignments a fixed per-expert buffer of ``capacity_factor`` times the fair share cannot hold."""
    loads = np.asarray(loads)
    capacity = math.ceil(capacity_factor * loads.sum() / len(loads))
    return int(np.maximum(loads - capacity, 0).sum())
