"""Lab 06-03 reference: int4 with group-wise scales, and two nibbles per byte.

The storage this builds is what a GPTQ/AWQ checkpoint holds (``W4A16, group_size=128,
sym``): 4-bit codes packed densely, one 16-bit scale per 128 input columns of each row.
"""

from __future__ import annotations

import sys

import numpy as np

from course.lab_support.phase_06 import channel_scaled, gaussian, print_lab03_table  # noqa: F401 (given)

QMAX = 7


def quantize_grouped(w: np.ndarray, group_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``(out, in)`` float -> ``(q int8 (out, in), scales float32 (out, in // group_size))``.

    Each run of ``group_size`` consecutive input columns of a row shares one scale.
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
    """Inverse of :func:`quantize_grouped` up to rounding: ``(out, in)`` float32."""
    rows, cols = q.shape
    g = q.reshape(rows, cols // group_size, group_size).astype(np.float32)
    return (g * np.asarray(scales, dtype=np.float32)[:, :, None]).reshape(rows, cols)


def pack_int4(q: np.ndarray) -> np.ndarray:
    """``(rows, n)`` int8 codes in [-8, 7] -> ``(rows, n // 2)`` uint8, two codes per byte."""
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
    """Bytes of a packed int4 ``(out, in)`` weight with its group scales."""
    rows, cols = shape
    return rows * cols // 2 + rows * (cols // group_size) * scale_bytes


if __name__ == "__main__":
    print_lab03_table(sys.modules[__name__])
