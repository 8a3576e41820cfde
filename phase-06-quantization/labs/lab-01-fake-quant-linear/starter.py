"""Lab 06-01: symmetric int8 fake-quant, per tensor and per output channel.

Fill in TODOs 1-5 (README "Tasks"). The data helpers and the report come from
``course.lab_support.phase_06``: ``python starter.py`` prints your numbers once the TODOs
are done.
"""

from __future__ import annotations

import sys

import numpy as np

from course.lab_support.phase_06 import gaussian, lab01_report, print_report, with_outlier_row  # noqa: F401 (given)

QMAX = 127


def quantize_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(out, in)`` float -> ``(q int8 (out, in), scales float32 (out,))``: one scale per output row."""
    raise NotImplementedError("TODO 1: quantize each output row with its own scale (README task 1)")


def quantize_per_tensor(w: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``w`` -> ``(q int8, 0-d float32 scale)``: one scale for the whole tensor, or the static ``scale`` given."""
    raise NotImplementedError("TODO 2: quantize the whole tensor with one scale (README task 2)")


def dequantize(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Codes back to float32, with a 0-d scale or one scale per row."""
    raise NotImplementedError("TODO 3: turn codes back into floats (README task 3)")


def quant_linear(x: np.ndarray, q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``(tokens, in)`` activations times the quantized ``(out, in)`` weight: ``(tokens, out)``."""
    raise NotImplementedError("TODO 4: the fake-quant linear layer (README task 4)")


def memory_bytes(w: np.ndarray) -> int:
    """Bytes of the unquantized tensor, in whatever dtype it has."""
    raise NotImplementedError("TODO 5: bytes of a float tensor (README task 5)")


def memory_bytes_quant(q: np.ndarray, scales: np.ndarray) -> int:
    """Bytes a quantized tensor occupies: its codes and its scales."""
    raise NotImplementedError("TODO 5: bytes of a quantized tensor (README task 5)")


if __name__ == "__main__":
    print_report(lab01_report(sys.modules[__name__]))
