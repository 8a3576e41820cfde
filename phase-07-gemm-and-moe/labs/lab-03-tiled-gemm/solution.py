"""Lab 07-03 reference: a tiled GEMM and the count of what it loads from slow memory.

``C = A @ B`` with ``A (M, K)`` and ``B (K, N)``. Traffic is counted in elements of A
and B read from slow memory (HBM on a GPU); multiply by the dtype size for bytes.
"""
from __future__ import annotations

import math

import numpy as np


def tiled_gemm(a: np.ndarray, b: np.ndarray, tile_m: int, tile_n: int, tile_k: int) -> np.ndarray:
    """``a @ b``, one ``tile_m x tile_n`` output tile at a time, ``tile_k`` columns of A per step."""
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
    """Elements of A and B loaded when every output element is computed on its own."""
    return 2 * M * N * K


def tiled_traffic(M: int, N: int, K: int, tile_m: int, tile_n: int) -> int:
    """Elements of A and B loaded when ``C`` is computed in ``tile_m x tile_n`` output tiles."""
    return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)


def reuse_factor(M: int, N: int, K: int, tile_m: int, tile_n: int) -> float:
    """How many times fewer loads the tiled loop makes than the untiled one."""
    return naive_traffic(M, N, K) / tiled_traffic(M, N, K, tile_m, tile_n)
