"""Scaffolding phase 05's labs hand the learner: report tables built from the learner's functions.

Each lab's ``__main__`` block passes its own module in, so ``python starter.py`` and
``python solution.py`` print the same tables from whichever implementation they hold,
and the formatting code exists once.
"""
from __future__ import annotations


def format_launch_report(lab) -> str:
    """Lab 05-02: break-even by model size, and the fade of the speedup as GPU time grows."""
    lines = ["num_ops  capture  crossover  speedup@1000"]
    for n in (1, 4, 32, 300):
        for c in (n, 5 * n):
            lines.append(f"{n:7d}  {c:7d}  {str(lab.crossover(n, c)):>9}  {lab.per_call_speedup(n, 1000, c):12.2f}")
    lines += ["", "gpu_us  launch_share  step_speedup   (300 ops, 5 us/launch)"]
    for g in (0.0, 150.0, 1500.0, 15000.0):
        f = lab.launch_fraction(300, 5.0, g)
        lines.append(f"{g:6.0f}  {f:12.3f}  {lab.amdahl_speedup(f, 300):12.2f}")
    return "\n".join(lines)


def capture_progress_bars(dispatcher) -> list[str]:
    """Lab 05-03: the start-up progress bars' titles and lengths, in the model runner's format.

    One bar per capture pass of ``dispatcher.get_capture_descs()``; the format is
    vllm/v1/worker/gpu_model_runner.py:6518@0decac0 ("Capturing CUDA graphs ({}, {})").
    """
    bars = []
    for mode, descs in dispatcher.get_capture_descs():
        kind = "decode" if descs[0].uniform else "mixed prefill-decode"
        bars.append(f"Capturing CUDA graphs ({kind}, {mode.name}): {len(descs)}/{len(descs)}")
    return bars
