"""Lab 06-01: symmetric int8 fake-quant, per tensor and per output channel.

Fill in TODOs 1-5 (README "Tasks"). The data helpers and ``report`` at the bottom are
given: ``python starter.py`` prints your numbers once the TODOs are done.
"""

from __future__ import annotations

import numpy as np

from mini_vllm.quant import relative_error

QMAX = 127


def quantize_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(out, in)`` float -> ``(q int8, scales float32 of shape (out,))``.

    scale[o] = max|w[o]| / 127, with 1.0 for an all-zero row; q = clip(round(w / scale)).
    """
    raise NotImplementedError("TODO 1: one scale per row = max|row| / 127 (guard zeros), round, clip — see README step 1")


def quantize_per_tensor(w: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One scale for the whole tensor (``max|w| / 127`` unless a static ``scale`` is given)."""
    raise NotImplementedError("TODO 2: one scalar scale (or the given static one), round, THEN clip — see README step 2")


def dequantize(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``q * scale``: a 0-d scale multiplies everything, a vector scales row by row."""
    raise NotImplementedError("TODO 3: q as float32 times scales broadcast over rows — see README step 3")


def quant_linear(x: np.ndarray, q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``x @ dequantize(q, scales).T``: the fake-quant ``apply``."""
    raise NotImplementedError("TODO 4: x @ dequantize(q, scales).T — see README step 4")


def memory_bytes(w: np.ndarray) -> int:
    """Bytes of the unquantized tensor, in whatever dtype it has."""
    raise NotImplementedError("TODO 5: the array's byte count — see README step 5")


def memory_bytes_quant(q: np.ndarray, scales: np.ndarray) -> int:
    """Bytes of the int8 payload plus its float32 scales."""
    raise NotImplementedError("TODO 5: payload bytes + scale bytes — see README step 5")


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
    """The lab's numbers, computed with the functions above (``python starter.py``)."""
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
