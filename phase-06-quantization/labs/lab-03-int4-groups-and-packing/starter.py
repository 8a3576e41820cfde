"""Lab 06-03: int4 with group-wise scales, and two nibbles per byte.

Fill in TODOs 1-5 (README "Tasks"). The data helpers and ``sweep`` at the bottom are
given: ``python starter.py`` prints your table once the TODOs are done.

The storage this builds is what a GPTQ/AWQ checkpoint holds (``W4A16, group_size=128,
sym``): 4-bit codes packed densely, one 16-bit scale per 128 input columns of each row.
"""

from __future__ import annotations

import numpy as np

from mini_vllm.quant import relative_error

QMAX = 7


def quantize_grouped(w: np.ndarray, group_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``(out, in)`` float -> ``(q int8 in [-7, 7], scales (out, in // group_size) float32)``.

    Group ``g`` of row ``o`` is ``w[o, g*group_size:(g+1)*group_size]``; its scale is
    ``max|group| / 7`` (1.0 for an all-zero group).
    """
    raise NotImplementedError("TODO 1: reshape to (rows, groups, group_size), scale = max|group| / 7 (guard zeros), round, clip — see README step 1")


def dequantize_grouped(q: np.ndarray, scales: np.ndarray, group_size: int = 128) -> np.ndarray:
    """Each group's codes times that group's scale, back to ``(out, in)`` float32."""
    raise NotImplementedError("TODO 2: codes times their group scale, reshaped back to (rows, cols) — see README step 2")


def pack_int4(q: np.ndarray) -> np.ndarray:
    """``(rows, n)`` int8 codes in [-8, 7] -> ``(rows, n // 2)`` uint8.

    Store ``code + 8`` (an unsigned nibble, 0..15); column ``2k`` goes in the low
    nibble of byte ``k``, column ``2k + 1`` in the high nibble.
    """
    raise NotImplementedError("TODO 3: add 8, even column in the low nibble, odd column in the high nibble — see README step 3")


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_int4`: ``(rows, m)`` uint8 -> ``(rows, 2m)`` int8."""
    raise NotImplementedError("TODO 4: split each byte into low and high nibble, subtract 8, interleave — see README step 4")


def memory_bytes_grouped(shape: tuple[int, int], group_size: int, scale_bytes: int = 2) -> int:
    """Packed int4 payload (half a byte per weight) plus one scale per group."""
    raise NotImplementedError("TODO 5: rows * cols / 2 payload bytes + one scale per group — see README step 5")


# --------------------------------------------------------------------- given: data + report

GROUP_SIZES = (16, 32, 64, 128, 256, 1024)


def gaussian(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Standard-normal float32 weights, no structure."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def channel_scaled(shape: tuple[int, int], sigma: float = 0.5, seed: int = 0) -> np.ndarray:
    """Gaussian weights whose input columns each get a log-normal magnitude (``exp(N(0, sigma))``).

    A crude model of a trained matrix, where some input channels carry larger weights than
    others: the loudest value in a long stretch of columns then overstates most of them.
    """
    rng = np.random.default_rng(seed)
    col = np.exp(rng.normal(0.0, sigma, size=shape[1]))
    return (rng.standard_normal(shape) * col[None, :]).astype(np.float32)


def sweep(shape: tuple[int, int] = (256, 1024)) -> list[tuple[int, float, float, float]]:
    """Rows of ``(group_size, gaussian error, channel-scaled error, bytes per weight)``."""
    plain, scaled = gaussian(shape), channel_scaled(shape)
    rows = []
    for g in GROUP_SIZES:
        e_plain = relative_error(plain, dequantize_grouped(*quantize_grouped(plain, g), g))
        e_scaled = relative_error(scaled, dequantize_grouped(*quantize_grouped(scaled, g), g))
        rows.append((g, e_plain, e_scaled, memory_bytes_grouped(shape, g) / (shape[0] * shape[1])))
    return rows


if __name__ == "__main__":
    print(f"{'group':>6} {'err gaussian':>13} {'err ch-scaled':>14} {'bytes/weight':>13} {'fp32/this':>10}")
    for g, e1, e2, bpw in sweep():
        print(f"{g:>6} {e1:>13.4f} {e2:>14.4f} {bpw:>13.6f} {4 / bpw:>10.2f}")
