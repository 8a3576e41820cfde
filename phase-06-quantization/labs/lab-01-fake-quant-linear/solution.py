"""Lab 06-01 reference: symmetric int8 fake-quant, per tensor and per output channel.

Fake quant = quantize, then dequantize back to float before the matmul. It isolates the
rounding error (the accuracy question) from the kernel (the speed question). The two
halves map onto a vLLM linear method: the quantizers are what ``create_weights`` +
``process_weights_after_loading`` leave on the layer, ``quant_linear`` is ``apply``.
"""

from __future__ import annotations

import sys

import numpy as np

from course.lab_support.phase_06 import gaussian, lab01_report, print_report, with_outlier_row  # noqa: F401 (given)

QMAX = 127


def quantize_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(out, in)`` float -> ``(q int8 (out, in), scales float32 (out,))``: one scale per output row."""
    w = np.asarray(w, dtype=np.float32)
    scales = np.max(np.abs(w), axis=1) / np.float32(QMAX)
    scales = np.where(scales == 0, np.float32(1.0), scales).astype(np.float32)
    q = np.clip(np.rint(w / scales[:, None]), -QMAX, QMAX).astype(np.int8)
    return q, scales


def quantize_per_tensor(w: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``w`` -> ``(q int8, 0-d float32 scale)``: one scale for the whole tensor, or the static ``scale`` given."""
    w = np.asarray(w, dtype=np.float32)
    if scale is None:
        scale = np.max(np.abs(w)) / np.float32(QMAX) if w.size else 0.0
        scale = scale if scale != 0 else 1.0
    scale = np.asarray(scale, dtype=np.float32)
    q = np.clip(np.rint(w / scale), -QMAX, QMAX).astype(np.int8)
    return q, scale


def dequantize(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Codes back to float32, with a 0-d scale or one scale per row."""
    scales = np.asarray(scales, dtype=np.float32)
    if scales.ndim == 1:
        scales = scales[:, None]
    return q.astype(np.float32) * scales


def quant_linear(x: np.ndarray, q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``(tokens, in)`` activations times the quantized ``(out, in)`` weight: ``(tokens, out)``."""
    return np.asarray(x, dtype=np.float32) @ dequantize(q, scales).T


def memory_bytes(w: np.ndarray) -> int:
    """Bytes of the unquantized tensor, in whatever dtype it has."""
    return int(np.asarray(w).nbytes)


def memory_bytes_quant(q: np.ndarray, scales: np.ndarray) -> int:
    """Bytes a quantized tensor occupies: its codes and its scales."""
    return int(q.nbytes + np.asarray(scales).nbytes)


if __name__ == "__main__":
    print_report(lab01_report(sys.modules[__name__]))
