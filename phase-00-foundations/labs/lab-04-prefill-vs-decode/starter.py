"""Lab 00-04: the roofline arithmetic of one forward step. Your work: eight short formulas.

The model of a step: every weight is read from HBM once (``n_params * dtype_bytes``
bytes) and every weight does one multiply-add per token (``2 * n_params`` FLOPs per
token). Attention FLOPs and KV-cache reads are left out; they matter at long contexts.
A step takes as long as the slower of the two: moving the bytes or doing the math.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from course.lab_support.phase_00 import print_roofline


@dataclass(frozen=True)
class GPU:
    """Datasheet peaks: dense fp16/bf16 tensor-core FLOP/s and HBM bytes/s."""

    name: str
    peak_flops: float
    bandwidth: float


A100 = GPU("A100-SXM4-80GB", peak_flops=312e12, bandwidth=2.0e12)
H100 = GPU("H100-SXM5-80GB", peak_flops=989e12, bandwidth=3.35e12)
N_PARAMS_8B = 8e9


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """FLOPs the GPU can do in the time it moves one byte: the intensity where a
    workload stops being limited by memory and starts being limited by math."""
    raise NotImplementedError("TODO 1: the ridge point of a GPU (README task 1)")


def arithmetic_intensity(num_tokens: int, dtype_bytes: float) -> float:
    """FLOPs per byte of one step over ``num_tokens`` tokens.

    ``2 * n_params * num_tokens / (n_params * dtype_bytes)``: the parameter count
    cancels, so only the tokens sharing one pass over the weights matter.
    """
    raise NotImplementedError("TODO 2: FLOPs per byte of one step (README task 2)")


def is_compute_bound(intensity: float, ridge: float) -> bool:
    """At or past the ridge the math units, not HBM, set the pace."""
    raise NotImplementedError("TODO 3: which side of the ridge a step is on (README task 3)")


def compute_utilization(intensity: float, ridge: float) -> float:
    """Best-case fraction of peak FLOP/s: ``intensity / ridge``, capped at 1."""
    raise NotImplementedError("TODO 4: the best-case fraction of peak FLOP/s (README task 4)")


def step_time(n_params: float, dtype_bytes: float, num_tokens: int, gpu: GPU) -> float:
    """Seconds for one step: the slower of reading the weights and doing the FLOPs."""
    raise NotImplementedError("TODO 5: seconds for one forward step (README task 5)")


def decode_tokens_per_second(n_params: float, dtype_bytes: float, batch: int, gpu: GPU) -> float:
    """Aggregate decode throughput: ``batch`` sequences each get one token per step."""
    raise NotImplementedError("TODO 6: aggregate decode throughput (README task 6)")


def critical_batch_size(ridge: float, dtype_bytes: float) -> int:
    """Smallest decode batch whose intensity reaches the ridge."""
    raise NotImplementedError("TODO 7: the smallest compute-bound decode batch (README task 7)")


def sequences_in_flight(throughput: float, latency: float) -> float:
    """Little's law, N = X * L: with ``throughput`` tokens/s in total and one token per
    sequence every ``latency`` seconds, this many sequences must be running at once."""
    raise NotImplementedError("TODO 8: sequences running at once, by Little's law (README task 8)")


if __name__ == "__main__":
    print_roofline(sys.modules[__name__])
