"""Lab 05-01 reference: capture once, replay with one launch, copy inputs into the buffer.

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
        cls.n = 0

    @classmethod
    def bump(cls, k: int = 1) -> None:
        cls.n += k


def run_eager(ops: Sequence[Op], x: np.ndarray) -> np.ndarray:
    """One launch per op, every call."""
    for op in ops:
        LaunchCounter.bump(1)
        x = op(x)
    return x


class CUDAGraph:
    """A recording bound to the input and output arrays it was captured with."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.static_input: np.ndarray | None = None
        self.static_output: np.ndarray | None = None

    def capture(self, ops: Sequence[Op], static_input: np.ndarray) -> np.ndarray:
        self.ops = list(ops)
        self.static_input = static_input
        self.static_output = np.array(run_eager(self.ops, static_input))
        return self.static_output

    def replay(self) -> np.ndarray:
        LaunchCounter.bump(1)
        out = self.static_input
        for op in self.ops:
            out = op(out)
        np.copyto(self.static_output, out)
        return self.static_output


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
        return len(self.graphs)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        entry = self.graphs.get(x.shape)
        if entry is None:
            static_input = x.copy()
            graph = CUDAGraph()
            output = graph.capture(self.ops, static_input)
            self.graphs[x.shape] = GraphEntry(x.shape, static_input, graph, output)
            return output
        np.copyto(entry.static_input, x)
        return entry.cudagraph.replay()
