"""Lab 06-03: int4 with group-wise scales, and two nibbles per byte.

Fill in TODOs 1-5 (README "Tasks"). The data helpers and the sweep table come from
``course.lab_support.phase_06``: ``python starter.py`` prints your table once the TODOs
are done.

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
    raise NotImplementedError("TODO 1: quantize with one scale per group of columns (README task 1)")


def dequantize_grouped(q: np.ndarray, scales: np.ndarray, group_size: int = 128) -> np.ndarray:
    """Inverse of :func:`quantize_grouped` up to rounding: ``(out, in)`` float32."""
    raise NotImplementedError("TODO 2: undo task 1 (README task 2)")


def pack_int4(q: np.ndarray) -> np.ndarray:
    """``(rows, n)`` int8 codes in [-8, 7] -> ``(rows, n // 2)`` uint8, two codes per byte."""
    raise NotImplementedError("TODO 3: pack two codes per byte (README task 3)")


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_int4`: ``(rows, m)`` uint8 -> ``(rows, 2m)`` int8."""
    raise NotImplementedError("TODO 4: unpack the bytes of task 3 (README task 4)")


def memory_bytes_grouped(shape: tuple[int, int], group_size: int, scale_bytes: int = 2) -> int:
    """Bytes of a packed int4 ``(out, in)`` weight with its group scales."""
    raise NotImplementedError("TODO 5: bytes of the packed format (README task 5)")


if __name__ == "__main__":
    print_lab03_table(sys.modules[__name__])
