"""Tiled GEMM and its memory-traffic model, in numpy.

``C = A @ B`` with ``A (M, K)`` and ``B (K, N)``. A GPU kernel computes ``C`` one
``tile_m x tile_n`` output tile at a time; each program streams its ``tile_m`` rows of
``A`` and ``tile_n`` columns of ``B`` through fast memory in ``tile_k``-wide slices.
Reordering the loops changes no product and no sum's set of terms, so
:func:`tiled_gemm` equals ``A @ B`` (exactly on integers, to rounding on floats).
What tiling changes is how often each input element is fetched from slow memory,
which this module counts in elements:

- untiled (one output element per "tile"): ``2*M*N*K`` loads;
- tiled: ``M*K*ceil(N/tile_n) + K*N*ceil(M/tile_m)`` loads, since each row-panel of
  ``A`` is read once per column of tiles and each column-panel of ``B`` once per row
  of tiles;
- their ratio, the reuse, is ``2 / (1/tile_m + 1/tile_n)`` when the tiles divide the
  matrix: the harmonic mean of the two tile sides. A tile side larger than the matrix
  side counts as the matrix side, so a decode GEMM (``M=1``) has reuse below 2 for
  every tile shape.

vLLM's Triton MoE kernel is this loop nest with one indirection (which expert's ``B``
a row-block uses):
``vllm/model_executor/layers/fused_moe/fused_moe.py:295@0decac0 (fused_moe_kernel)``.
Its default tile sizes come from
``vllm/model_executor/layers/fused_moe/fused_moe.py:1205@0decac0 (get_default_config)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GpuSpec",
    "H100_SXM",
    "tiled_gemm",
    "naive_traffic",
    "tiled_traffic",
    "reuse_factor",
    "harmonic_mean",
    "arithmetic_intensity",
    "tile_smem_bytes",
    "best_square_tile",
    "best_tile",
]


@dataclass(frozen=True)
class GpuSpec:
    """The three numbers a napkin model of a GPU kernel needs.

    ``kernel_floor_s`` is the shortest time any kernel occupies the GPU, however little
    it does (launch, ramp-up and drain of a grid); it is a model input to be calibrated
    against a profile, not a datasheet figure.
    """

    name: str
    peak_flops: float
    hbm_bytes_per_s: float
    kernel_floor_s: float

    @property
    def ridge_point(self) -> float:
        """FLOPs per byte above which a kernel is compute-bound rather than bandwidth-bound."""
        return self.peak_flops / self.hbm_bytes_per_s


# Dense bf16 tensor-core peak and HBM3 bandwidth from NVIDIA's H100 SXM datasheet.
H100_SXM = GpuSpec("H100 SXM", peak_flops=989e12, hbm_bytes_per_s=3.35e12, kernel_floor_s=3e-6)


def tiled_gemm(a: np.ndarray, b: np.ndarray, tile_m: int, tile_n: int, tile_k: int) -> np.ndarray:
    """``a @ b`` computed tile by tile; edge tiles are clipped, the kernels' masked loads."""
    M, K = a.shape
    K2, N = b.shape
    if K != K2:
        raise ValueError(f"inner dimensions differ: {a.shape} @ {b.shape}")
    if min(tile_m, tile_n, tile_k) < 1:
        raise ValueError("tile sizes must be >= 1")
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
    """Element loads when every output element reads its own row of A and column of B."""
    return 2 * M * N * K


def tiled_traffic(M: int, N: int, K: int, tile_m: int, tile_n: int) -> int:
    """Element loads with ``tile_m x tile_n`` output tiles (each panel read once per tile)."""
    return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)


def reuse_factor(M: int, N: int, K: int, tile_m: int, tile_n: int) -> float:
    """How many times fewer loads the tiled loop makes than the naive one."""
    return naive_traffic(M, N, K) / tiled_traffic(M, N, K, tile_m, tile_n)


def harmonic_mean(x: float, y: float) -> float:
    """``2 / (1/x + 1/y)``: the reuse of an ``x x y`` tile that divides the matrix."""
    return 2.0 / (1.0 / x + 1.0 / y)


def arithmetic_intensity(M: int, N: int, K: int, tile_m: int, tile_n: int, dtype_bytes: int = 2) -> float:
    """FLOPs per byte of slow-memory traffic: ``2MNK`` over tiled loads plus one write of C."""
    bytes_moved = (tiled_traffic(M, N, K, tile_m, tile_n) + M * N) * dtype_bytes
    return 2 * M * N * K / bytes_moved


def tile_smem_bytes(tile_m: int, tile_n: int, tile_k: int, dtype_bytes: int = 2, num_stages: int = 1) -> int:
    """Shared memory for the operand slices of one tile: ``num_stages`` copies of ``(tile_m + tile_n) * tile_k``.

    Pipelined kernels keep several K-slices in flight (Triton's ``num_stages``); the
    fp32 accumulator lives in registers and is not counted.
    """
    return num_stages * (tile_m + tile_n) * tile_k * dtype_bytes


def best_square_tile(
    smem_budget: int, tile_k: int, dtype_bytes: int = 2, num_stages: int = 1,
    candidates: tuple[int, ...] = (16, 32, 64, 128, 256, 512),
) -> int:
    """Largest square tile side whose staged operands fit ``smem_budget`` bytes."""
    fitting = [t for t in candidates if tile_smem_bytes(t, t, tile_k, dtype_bytes, num_stages) <= smem_budget]
    if not fitting:
        raise ValueError(f"no candidate tile fits {smem_budget} bytes")
    return max(fitting)


def best_tile(
    smem_budget: int, tile_k: int, dtype_bytes: int = 2, num_stages: int = 1,
    candidates: tuple[int, ...] = (16, 32, 64, 128, 256, 512),
) -> tuple[int, int]:
    """The ``(tile_m, tile_n)`` of highest reuse whose staged operands fit ``smem_budget``.

    Shared memory grows with ``tile_m + tile_n`` and reuse with their harmonic mean, so
    for a fixed budget a square is best; but Triton tiles are powers of two, and the
    budget left over by the largest square often fits a 1:2 rectangle with more reuse.
    Ties go to the smaller footprint, then to the shorter ``tile_m``: the M side is
    tokens, the scarcer dimension at serving batch sizes.
    """
    fitting = [
        (tm, tn) for tm in candidates for tn in candidates
        if tile_smem_bytes(tm, tn, tile_k, dtype_bytes, num_stages) <= smem_budget
    ]
    if not fitting:
        raise ValueError(f"no candidate tile fits {smem_budget} bytes")
    return max(fitting, key=lambda t: (harmonic_mean(*t), -(t[0] + t[1]), -t[0]))
