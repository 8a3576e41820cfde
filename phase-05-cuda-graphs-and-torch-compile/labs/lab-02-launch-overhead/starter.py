"""Lab 05-02: the economics of CUDA graphs as closed forms.

Fill in the TODOs in order; README.md derives each formula. Grade yourself with
``LAB_IMPL=starter pytest -q labs/lab-02-launch-overhead`` from the phase folder.
"""
from __future__ import annotations


def launch_overhead_us(num_kernels: int, launch_us: float) -> float:
    """CPU time spent launching one eager step."""
    raise NotImplementedError("TODO 1: kernels times the per-launch cost — see README step 1")


def eager_launches(num_ops: int, num_calls: int) -> int:
    """``num_calls`` eager calls of a ``num_ops``-op model."""
    raise NotImplementedError("TODO 1: every call pays every op — see README step 1")


def graph_launches(num_ops: int, num_calls: int, capture_cost_ops: int | None = None) -> int:
    """First call captures (``capture_cost_ops``, default one eager pass); then 1 per call."""
    raise NotImplementedError("TODO 2: capture once (default: one eager pass), then 1 per call; 0 calls cost 0 — see README step 2")


def crossover(num_ops: int, capture_cost_ops: int | None = None) -> int | None:
    """The first call count at which the graph has used strictly fewer launches.

    ``capture + k - 1 < k * n``  <=>  ``k > (capture - 1) / (n - 1)``. None when
    ``n == 1``: one launch per call either way, so the graph never gets ahead.
    """
    raise NotImplementedError("TODO 3: smallest k with capture + k - 1 < k * n; None when n == 1 — see README step 3")


def per_call_speedup(num_ops: int, num_calls: int, capture_cost_ops: int | None = None) -> float:
    """Eager launches over graph launches after ``num_calls`` calls."""
    raise NotImplementedError("TODO 4: eager launches / graph launches — see README step 4")


def asymptotic_speedup(num_ops: int) -> int:
    """The limit of :func:`per_call_speedup` as calls grow: ``num_ops`` launches vs 1."""
    raise NotImplementedError("TODO 4: the limit of per_call_speedup as calls grow — see README step 4")


def launch_fraction(num_ops: int, launch_us: float, gpu_us: float) -> float:
    """Share of an eager step spent launching: ``n*L / (n*L + G)``."""
    raise NotImplementedError("TODO 5: n*L / (n*L + G) — see README step 5")


def amdahl_speedup(launch_fraction: float, num_ops: int) -> float:
    """Step-time speedup when the launch share ``f`` shrinks ``num_ops``-fold.

    ``1 / ((1 - f) + f / n)``, equal to ``(n*L + G) / (L + G)``.
    """
    raise NotImplementedError("TODO 5: 1 / ((1 - f) + f / n) — see README step 5")


def gpu_time_for_speedup(target: float, num_ops: int, launch_us: float) -> float:
    """GPU time per step at which the speedup has fallen to ``target``.

    Solve ``(n*L + G) / (L + G) = s`` for ``G``: ``G = L * (n - s) / (s - 1)``. Steps
    with more GPU work than this gain less than ``target`` from graphs.
    """
    raise NotImplementedError("TODO 6: solve (n*L + G) / (L + G) = target for G; reject targets outside (1, n) — see README step 6")


def format_report() -> str:
    """The two tables the README quotes: break-even by model size, and the fade."""
    lines = ["num_ops  capture  crossover  speedup@1000"]
    for n in (1, 4, 32, 300):
        for c in (n, 5 * n):
            lines.append(f"{n:7d}  {c:7d}  {str(crossover(n, c)):>9}  {per_call_speedup(n, 1000, c):12.2f}")
    lines += ["", "gpu_us  launch_share  step_speedup   (300 ops, 5 us/launch)"]
    for g in (0.0, 150.0, 1500.0, 15000.0):
        f = launch_fraction(300, 5.0, g)
        lines.append(f"{g:6.0f}  {f:12.3f}  {amdahl_speedup(f, 300):12.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_report())
