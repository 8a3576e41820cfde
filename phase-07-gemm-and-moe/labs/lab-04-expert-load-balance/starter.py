"""Lab 07-04: what a routing histogram costs under expert parallelism. Your work below the line.

The routings the tests use come from ``course.lab_support.phase_07``.
"""
from __future__ import annotations

import math  # noqa: F401

import numpy as np

from course.lab_support.phase_07 import balanced_routing, hot_expert_routing, random_routing  # noqa: F401 (given)


# ---------------------------------------------------------------- your diagnostics


def expert_loads(topk_ids: np.ndarray, num_experts: int) -> np.ndarray:
    """The routing histogram: how many (token, expert) assignments each of ``num_experts`` got."""
    raise NotImplementedError("TODO 1: the routing histogram (README task 1)")


def imbalance(loads: np.ndarray) -> float:
    """How much busier the busiest expert is than an average one: 1.0 is perfect balance."""
    raise NotImplementedError("TODO 2: how uneven the histogram is (README task 2)")


def device_loads(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None) -> np.ndarray:
    """Rows each of ``num_devices`` devices processes when expert ``e`` lives on device ``placement[e]``."""
    raise NotImplementedError("TODO 3: rows per device (README task 3)")


def ep_step_time(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None,
                 time_per_row: float = 1.0) -> float:
    """Time of one expert-parallel step, in units of ``time_per_row``."""
    raise NotImplementedError("TODO 4: time of one expert-parallel step (README task 4)")


def parallel_efficiency(loads: np.ndarray, num_devices: int, placement: np.ndarray | None = None) -> float:
    """Share of the devices' paid time spent on rows: 1.0 when every device is equally busy."""
    raise NotImplementedError("TODO 5: share of paid time doing work (README task 5)")


def dropped_tokens(loads: np.ndarray, capacity_factor: float) -> int:
    """Assignments a fixed per-expert buffer of ``capacity_factor`` times the fair share cannot hold."""
    raise NotImplementedError("TODO 6: assignments a fixed capacity drops (README task 6)")
