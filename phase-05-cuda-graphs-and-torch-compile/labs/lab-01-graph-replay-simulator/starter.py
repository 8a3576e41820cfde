"""Lab 05-01 (your work): capture once, replay with one launch, copy inputs into the buffer.

The same mechanism as ``mini_vllm/cudagraph.py`` without padding or piecewise
splitting. Upstream counterpart: ``vllm/compilation/cuda_graph.py:233@0decac0 (CUDAGraphWrapper.__call__)``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Op = Callable[[np.ndarray], np.ndarray]


class LaunchCounter:
    """Global count of kernel launches: the CPU cost this lab measures."""

    n: int = 0

    @classmethod
    def reset(cls) -> None:
        raise NotImplementedError("TODO 1: zero the counter (README task 1)")

    @classmethod
    def bump(cls, k: int = 1) -> None:
        raise NotImplementedError("TODO 1: count k launches (README task 1)")


def run_eager(ops: Sequence[Op], x: np.ndarray) -> np.ndarray:
    """One launch per op, every call. README task 2."""
    raise NotImplementedError("TODO 2: run the ops eagerly (README task 2)")


class CUDAGraph:
    """A recording bound to the input and output arrays it was captured with."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.static_input: np.ndarray | None = None
        self.static_output: np.ndarray | None = None

    def capture(self, ops: Sequence[Op], static_input: np.ndarray) -> np.ndarray:
        """Record ops against static_input; returns the output array replays will write. README task 3."""
        raise NotImplementedError("TODO 3: capture the ops (README task 3)")

    def replay(self) -> np.ndarray:
        """One launch; the recorded ops on the captured input. README task 4."""
        raise NotImplementedError("TODO 4: replay the recording (README task 4)")


@dataclass
class GraphEntry:
    """What the runner keeps per shape (upstream: ``CUDAGraphEntry``)."""

    shape: tuple[int, ...]
    static_input: np.ndarray
    cudagraph: CUDAGraph
    output: np.ndarray


class GraphRunner:
    """Per-shape dict of captured graphs: capture on first sight, replay after."""

    def __init__(self, ops: Sequence[Op]) -> None:
        self.ops = list(ops)
        self.graphs: dict[tuple[int, ...], GraphEntry] = {}

    @property
    def num_captured(self) -> int:
        raise NotImplementedError("TODO 5: count the captured shapes (README task 5)")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Capture on a shape's first call, replay after. README task 5."""
        raise NotImplementedError("TODO 5: capture or replay (README task 5)")
