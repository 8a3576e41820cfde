"""Lab 07-03 reference: a tiled GEMM and the count of what it loads from slow memory.

``C = A @ B`` with ``A (M, K)`` and ``B (K, N)``. Traffic is counted in elements of A
and B read from slow memory (HBM on a GPU); multiply by the dtype size for bytes.
"""
from __future__ import annotations

import math

import numpy as np


def tiled_gemm(a: np.ndarray, b: np.ndarray, tile_m: int, tile_n: int, tile_k: int) -> np.ndarray:
    """``a @ b``, one ``tile_m x tile_n`` output tile at a time, ``tile_k`` columns of A per step.

    The last tile along each axis may be smaller than the tile size (a ragged edge);
    clipping the slice bounds with ``min`` plays the role of a GPU kernel's masked loads.
    """
    M, K = a.shape
    _, N = b.shape
    c = np.zeros((M, N), dtype=np.result_type(a, b))
    for m0 in range(0, M, tile_m):
        m1 = min(m0 + tile_m, M)
        for n0 in range(0, N, tile_n):
            n1 = min(n0 + tile_n, N)
            acc = np.zeros((m1 - m0, n1 - n0), dtype=c.dtype)
            for k0 in range(0, K, tile_k):
                k1 = min(k0 + tile_k, K)
                acc += a[m0:m1, k0:k1] @ b[k0:k1, n0:n1]
            c[m0:m1, n0:n1] = acc
    return c


def naive_traffic(M: int, N: int, K: int) -> int:
    """Each of the ``M*N`` outputs reads its own K-row of A and K-column of B."""
    return 2 * M * N * K


def tiled_traffic(M: int, N: int, K: int, tile_m: int, tile_n: int) -> int:
    """Each output tile reads one ``tile_m x K`` panel of A and one ``K x tile_n`` panel of B.

    So A is read once per column of tiles (``ceil(N / tile_n)`` times) and B once per
    row of tiles (``ceil(M / tile_m)`` times).
    """
    return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)


def reuse_factor(M: int, N: int, K: int, tile_m: int, tile_n: int) -> float:
    """Naive loads divided by tiled loads: how often each loaded element is used."""
    return naive_traffic(M, N, K) / tiled_traffic(M, N, K, tile_m, tile_n)
