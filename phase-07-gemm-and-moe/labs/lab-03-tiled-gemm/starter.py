"""Lab 07-03: a tiled GEMM and the count of what it loads from slow memory. Your work.

``C = A @ B`` with ``A (M, K)`` and ``B (K, N)``. Traffic is counted in elements of A
and B read from slow memory (HBM on a GPU); multiply by the dtype size for bytes.
"""
from __future__ import annotations

import math  # noqa: F401

import numpy as np


def tiled_gemm(a: np.ndarray, b: np.ndarray, tile_m: int, tile_n: int, tile_k: int) -> np.ndarray:
    """``a @ b``, one ``tile_m x tile_n`` output tile at a time, ``tile_k`` columns of A per step."""
    raise NotImplementedError("TODO 1: the tiled matrix multiply (README task 1)")


def naive_traffic(M: int, N: int, K: int) -> int:
    """Elements of A and B loaded when every output element is computed on its own."""
    raise NotImplementedError("TODO 2: loads of the untiled loop (README task 2)")


def tiled_traffic(M: int, N: int, K: int, tile_m: int, tile_n: int) -> int:
    """Elements of A and B loaded when ``C`` is computed in ``tile_m x tile_n`` output tiles."""
    raise NotImplementedError("TODO 3: loads of the tiled loop (README task 3)")


def reuse_factor(M: int, N: int, K: int, tile_m: int, tile_n: int) -> float:
    """How many times fewer loads the tiled loop makes than the untiled one."""
    raise NotImplementedError("TODO 4: how much tiling saves (README task 4)")
