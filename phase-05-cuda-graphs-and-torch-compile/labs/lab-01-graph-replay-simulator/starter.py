"""Lab 05-01: build capture/replay on the CPU.

Fill in the five TODOs in order; README.md explains each step. Run the spec with
``LAB_IMPL=starter pytest -q labs/lab-01-graph-replay-simulator`` from the phase folder.
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
        raise NotImplementedError("TODO 1: set the class-level count back to 0 — see README step 1")

    @classmethod
    def bump(cls, k: int = 1) -> None:
        raise NotImplementedError("TODO 1: add k to the class-level count — see README step 1")


def run_eager(ops: Sequence[Op], x: np.ndarray) -> np.ndarray:
    """One launch per op, every call."""
    raise NotImplementedError("TODO 2: apply each op in order, bumping once per op — see README step 2")


class CUDAGraph:
    """A recording bound to the input and output arrays it was captured with."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.static_input: np.ndarray | None = None
        self.static_output: np.ndarray | None = None

    def capture(self, ops: Sequence[Op], static_input: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            "TODO 3: remember the ops and the static_input object, run the ops eagerly, "
            "keep the result as static_output and return it — see README step 3"
        )

    def replay(self) -> np.ndarray:
        raise NotImplementedError(
            "TODO 4: one launch; recompute from self.static_input and copy the result into "
            "self.static_output — see README step 4"
        )


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
        raise NotImplementedError("TODO 5: how many shapes have a graph — see README step 5")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            "TODO 5: unseen shape -> copy x into a new buffer, capture, store a GraphEntry; "
            "seen shape -> np.copyto the entry's buffer, then replay — see README step 5"
        )
