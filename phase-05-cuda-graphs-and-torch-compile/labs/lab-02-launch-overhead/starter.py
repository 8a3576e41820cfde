"""Lab 05-02 (your work): the economics of CUDA graphs as closed forms.

Two models. Counting launches (exact integers): eager pays ``num_ops`` per call; a
graph pays ``capture_cost_ops`` once, then 1 per call. Timing a step (microseconds):
eager costs ``num_ops * launch_us + gpu_us``, a replay ``launch_us + gpu_us``. The
second model is the first with the GPU's own work added back, which is Amdahl's law
with the launch share of the eager step as the part that gets faster.
"""
from __future__ import annotations


def launch_overhead_us(num_kernels: int, launch_us: float) -> float:
    """CPU time spent launching one eager step. README task 1."""
    raise NotImplementedError("TODO 1: price one eager step's launches (README task 1)")


def eager_launches(num_ops: int, num_calls: int) -> int:
    """Launches of num_calls eager calls. README task 1."""
    raise NotImplementedError("TODO 1: count eager launches (README task 1)")


def graph_launches(num_ops: int, num_calls: int, capture_cost_ops: int | None = None) -> int:
    """Launches of num_calls calls through a graph, capture included. README task 2."""
    raise NotImplementedError("TODO 2: count graph launches (README task 2)")


def crossover(num_ops: int, capture_cost_ops: int | None = None) -> int | None:
    """The first call count at which the graph has used strictly fewer launches, or None. README task 3."""
    raise NotImplementedError("TODO 3: find the break-even call (README task 3)")


def per_call_speedup(num_ops: int, num_calls: int, capture_cost_ops: int | None = None) -> float:
    """Eager launches over graph launches after num_calls calls. README task 4."""
    raise NotImplementedError("TODO 4: the launch ratio (README task 4)")


def asymptotic_speedup(num_ops: int) -> int:
    """The limit of per_call_speedup as the calls grow. README task 4."""
    raise NotImplementedError("TODO 4: the ceiling (README task 4)")


def launch_fraction(num_ops: int, launch_us: float, gpu_us: float) -> float:
    """Share of an eager step spent launching. README task 5."""
    raise NotImplementedError("TODO 5: the launch share (README task 5)")


def amdahl_speedup(launch_fraction: float, num_ops: int) -> float:
    """Step-time speedup written in terms of the launch share. README task 5."""
    raise NotImplementedError("TODO 5: the speedup from the launch share (README task 5)")


def gpu_time_for_speedup(target: float, num_ops: int, launch_us: float) -> float:
    """GPU time per step at which the speedup has fallen to target. README task 6."""
    raise NotImplementedError("TODO 6: solve for the GPU time (README task 6)")


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_05 import format_launch_report

    print(format_launch_report(sys.modules[__name__]))
