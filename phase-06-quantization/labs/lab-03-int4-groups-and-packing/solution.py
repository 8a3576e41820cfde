"""Lab 06-03 reference: int4 with group-wise scales, and two nibbles per byte.

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
    w = np.asarray(w, dtype=np.float32)
    rows, cols = w.shape
    if cols % group_size:
        raise ValueError(f"{cols} input columns do not split into groups of {group_size}")
    g = w.reshape(rows, cols // group_size, group_size)
    scales = np.max(np.abs(g), axis=2) / np.float32(QMAX)
    scales = np.where(scales == 0, np.float32(1.0), scales).astype(np.float32)
    q = np.clip(np.rint(g / scales[:, :, None]), -QMAX, QMAX).astype(np.int8)
    return q.reshape(rows, cols), scales


def dequantize_grouped(q: np.ndarray, scales: np.ndarray, group_size: int = 128) -> np.ndarray:
    """Each group's codes times that group's scale, back to ``(out, in)`` float32."""
    rows, cols = q.shape
    g = q.reshape(rows, cols // group_size, group_size).astype(np.float32)
    return (g * np.asarray(scales, dtype=np.float32)[:, :, None]).reshape(rows, cols)


def pack_int4(q: np.ndarray) -> np.ndarray:
    """``(rows, n)`` int8 codes in [-8, 7] -> ``(rows, n // 2)`` uint8.

    Store ``code + 8`` (an unsigned nibble, 0..15); column ``2k`` goes in the low
    nibble of byte ``k``, column ``2k + 1`` in the high nibble.
    """
    q = np.asarray(q)
    if q.shape[-1] % 2:
        raise ValueError("need an even number of columns to pack two per byte")
    if q.size and (q.min() < -8 or q.max() > 7):
        raise ValueError("int4 codes must lie in [-8, 7]")
    u = (q.astype(np.int16) + 8).astype(np.uint8)
    return (u[..., 0::2] | (u[..., 1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_int4`: ``(rows, m)`` uint8 -> ``(rows, 2m)`` int8."""
    packed = np.asarray(packed, dtype=np.uint8)
    out = np.empty(packed.shape[:-1] + (2 * packed.shape[-1],), dtype=np.int8)
    out[..., 0::2] = (packed & 0x0F).astype(np.int8) - 8
    out[..., 1::2] = (packed >> 4).astype(np.int8) - 8
    return out


def memory_bytes_grouped(shape: tuple[int, int], group_size: int, scale_bytes: int = 2) -> int:
    """Packed int4 payload (half a byte per weight) plus one scale per group."""
    rows, cols = shape
    return rows * cols // 2 + rows * (cols // group_size) * scale_bytes


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
