"""Lab 06-01 reference: symmetric int8 fake-quant, per tensor and per output channel.

Fake quant = quantize, then dequantize back to float before the matmul. It isolates the
rounding error (the accuracy question) from the kernel (the speed question). The two
halves map onto a vLLM linear method: the quantizers are what ``create_weights`` +
``process_weights_after_loading`` leave on the layer, ``quant_linear`` is ``apply``.
"""

from __future__ import annotations

import numpy as np

from mini_vllm.quant import relative_error

QMAX = 127


def quantize_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(out, in)`` float -> ``(q int8, scales float32 of shape (out,))``.

    scale[o] = max|w[o]| / 127, with 1.0 for an all-zero row; q = clip(round(w / scale)).
    """
    w = np.asarray(w, dtype=np.float32)
    scales = np.max(np.abs(w), axis=1) / np.float32(QMAX)
    scales = np.where(scales == 0, np.float32(1.0), scales).astype(np.float32)
    q = np.clip(np.rint(w / scales[:, None]), -QMAX, QMAX).astype(np.int8)
    return q, scales


def quantize_per_tensor(w: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One scale for the whole tensor (``max|w| / 127`` unless a static ``scale`` is given)."""
    w = np.asarray(w, dtype=np.float32)
    if scale is None:
        scale = np.max(np.abs(w)) / np.float32(QMAX) if w.size else 0.0
        scale = scale if scale != 0 else 1.0
    scale = np.asarray(scale, dtype=np.float32)
    q = np.clip(np.rint(w / scale), -QMAX, QMAX).astype(np.int8)
    return q, scale


def dequantize(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``q * scale``: a 0-d scale multiplies everything, a vector scales row by row."""
    scales = np.asarray(scales, dtype=np.float32)
    if scales.ndim == 1:
        scales = scales[:, None]
    return q.astype(np.float32) * scales


def quant_linear(x: np.ndarray, q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``x @ dequantize(q, scales).T``: the fake-quant ``apply``."""
    return np.asarray(x, dtype=np.float32) @ dequantize(q, scales).T


def memory_bytes(w: np.ndarray) -> int:
    """Bytes of the unquantized tensor, in whatever dtype it has."""
    return int(np.asarray(w).nbytes)


def memory_bytes_quant(q: np.ndarray, scales: np.ndarray) -> int:
    """Bytes of the int8 payload plus its float32 scales."""
    return int(q.nbytes + np.asarray(scales).nbytes)


# --------------------------------------------------------------------- given: data + report


def gaussian(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Standard-normal float32 weights: the lab's stand-in for a trained matrix."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def with_outlier_row(w: np.ndarray, row: int = 7, factor: float = 100.0) -> np.ndarray:
    """A copy of ``w`` whose row ``row`` is ``factor`` times louder."""
    w = np.array(w, dtype=np.float32, copy=True)
    w[row] *= factor
    return w


def report() -> dict[str, float]:
    """The lab's numbers, computed with the functions above (``python solution.py``)."""
    w = gaussian((256, 512))
    x = gaussian((16, 512), seed=1)
    q, s = quantize_per_channel(w)
    qt, st = quantize_per_tensor(w)
    wo = with_outlier_row(w)
    rest = np.arange(256) != 7
    qo, so = quantize_per_channel(wo)
    qto, sto = quantize_per_tensor(wo)
    return {
        "per_channel_error": relative_error(w, dequantize(q, s)),
        "per_tensor_error": relative_error(w, dequantize(qt, st)),
        "fp32_over_int8": memory_bytes(w) / memory_bytes_quant(q, s),
        "fp16_over_int8": memory_bytes(w.astype(np.float16)) / memory_bytes_quant(q, s),
        "outlier_per_channel_error": relative_error(wo[rest], dequantize(qo, so)[rest]),
        "outlier_per_tensor_error": relative_error(wo[rest], dequantize(qto, sto)[rest]),
        "outlier_per_tensor_zeros": float(np.mean(qto[rest] == 0)),
        "matmul_error": relative_error(x @ w.T, quant_linear(x, q, s)),
    }


if __name__ == "__main__":
    for name, value in report().items():
        print(f"{name:28s} {value:.4f}")
