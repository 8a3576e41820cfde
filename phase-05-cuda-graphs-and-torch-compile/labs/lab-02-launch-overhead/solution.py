"""Lab 05-02 reference: the economics of CUDA graphs as closed forms.

Two models. Counting launches (exact integers): eager pays ``num_ops`` per call; a
graph pays ``capture_cost_ops`` once, then 1 per call. Timing a step (microseconds):
eager costs ``num_ops * launch_us + gpu_us``, a replay ``launch_us + gpu_us``. The
second model is the first with the GPU's own work added back, which is Amdahl's law
with the launch share of the eager step as the part that gets faster.
"""
from __future__ import annotations


def launch_overhead_us(num_kernels: int, launch_us: float) -> float:
    """CPU time spent launching one eager step."""
    return num_kernels * launch_us


def eager_launches(num_ops: int, num_calls: int) -> int:
    """``num_calls`` eager calls of a ``num_ops``-op model."""
    return num_ops * num_calls


def graph_launches(num_ops: int, num_calls: int, capture_cost_ops: int | None = None) -> int:
    """First call captures (``capture_cost_ops``, default one eager pass); then 1 per call."""
    if num_calls <= 0:
        return 0
    capture = num_ops if capture_cost_ops is None else capture_cost_ops
    return capture + (num_calls - 1)


def crossover(num_ops: int, capture_cost_ops: int | None = None) -> int | None:
    """The first call count at which the graph has used strictly fewer launches.

    ``capture + k - 1 < k * n``  <=>  ``k > (capture - 1) / (n - 1)``. None when
    ``n == 1``: one launch per call either way, so the graph never gets ahead.
    """
    capture = num_ops if capture_cost_ops is None else capture_cost_ops
    if num_ops <= 1:
        return None
    return (capture - 1) // (num_ops - 1) + 1


def per_call_speedup(num_ops: int, num_calls: int, capture_cost_ops: int | None = None) -> float:
    """Eager launches over graph launches after ``num_calls`` calls."""
    return eager_launches(num_ops, num_calls) / graph_launches(num_ops, num_calls, capture_cost_ops)


def asymptotic_speedup(num_ops: int) -> int:
    """The limit of :func:`per_call_speedup` as calls grow: ``num_ops`` launches vs 1."""
    return num_ops


def launch_fraction(num_ops: int, launch_us: float, gpu_us: float) -> float:
    """Share of an eager step spent launching: ``n*L / (n*L + G)``."""
    launch = launch_overhead_us(num_ops, launch_us)
    return launch / (launch + gpu_us)


def amdahl_speedup(launch_fraction: float, num_ops: int) -> float:
    """Step-time speedup when the launch share ``f`` shrinks ``num_ops``-fold.

    ``1 / ((1 - f) + f / n)``, equal to ``(n*L + G) / (L + G)``.
    """
    f = launch_fraction
    return 1.0 / ((1.0 - f) + f / num_ops)


def gpu_time_for_speedup(target: float, num_ops: int, launch_us: float) -> float:
    """GPU time per step at which the speedup has fallen to ``target``.

    Solve ``(n*L + G) / (L + G) = s`` for ``G``: ``G = L * (n - s) / (s - 1)``. Steps
    with more GPU work than this gain less than ``target`` from graphs.
    """
    if not 1.0 < target < num_ops:
        raise ValueError(f"target must lie strictly between 1 and num_ops={num_ops}")
    return launch_us * (num_ops - target) / (target - 1.0)


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_05 import format_launch_report

    print(format_launch_report(sys.modules[__name__]))
