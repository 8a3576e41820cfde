"""Lab 07-03: a tiled GEMM and the count of what it loads from slow memory. Your work.

``C = A @ B`` with ``A (M, K)`` and ``B (K, N)``. Traffic is counted in elements of A
and B read from slow memory (HBM on a GPU); multiply by the dtype size for bytes.
"""
from __future__ import annotations

import math  # noqa: F401 - math.ceil is what step 3 needs

import numpy as np


def tiled_gemm(a: np.ndarray, b: np.ndarray, tile_m: int, tile_n: int, tile_k: int) -> np.ndarray:
    """``a @ b``, one ``tile_m x tile_n`` output tile at a time, ``tile_k`` columns of A per step.

    The last tile along each axis may be smaller than the tile size (a ragged edge);
    clipping the slice bounds with ``min`` plays the role of a GPU kernel's masked loads.
    """
    raise NotImplementedError(
        "TODO 1: loop over output tiles (m0, n0); for each, add a[m0:m1, k0:k1] @ b[k0:k1, n0:n1] over k0, "
        "with every slice end clipped by min() — see README step 1"
    )


def naive_traffic(M: int, N: int, K: int) -> int:
    """Each of the ``M*N`` outputs reads its own K-row of A and K-column of B."""
    raise NotImplementedError(
        "TODO 2: every output element reads K elements of A and K of B — see README step 2"
    )


def tiled_traffic(M: int, N: int, K: int, tile_m: int, tile_n: int) -> int:
    """Each output tile reads one ``tile_m x K`` panel of A and one ``K x tile_n`` panel of B.

    So A is read once per column of tiles (``ceil(N / tile_n)`` times) and B once per
    row of tiles (``ceil(M / tile_m)`` times).
    """
    raise NotImplementedError(
        "TODO 3: A is read ceil(N / tile_n) times, B ceil(M / tile_m) times — see README step 3"
    )


def reuse_factor(M: int, N: int, K: int, tile_m: int, tile_n: int) -> float:
    """Naive loads divided by tiled loads: how often each loaded element is used."""
    raise NotImplementedError(
        "TODO 4: naive loads / tiled loads — see README step 4"
    )
