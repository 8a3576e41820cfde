"""Lab 06-04 reference: activation outliers break per-tensor W8A8; SmoothQuant moves them.

W8A8 quantizes both matmul operands. Weights get per-output-channel scales (lab-01's
quantizer, imported from mini_vllm). Activations only exist at run time, so they get one
cheap scale per tensor or per token. A few channels that are 80x louder than the rest set
that one scale, and the quiet channels lose their resolution. SmoothQuant divides each
input channel of X by ``s_j`` and multiplies the matching column of W by ``s_j``: the
product is unchanged, but the loudness now sits in W, where per-channel scales absorb it.
"""

from __future__ import annotations

import sys

import numpy as np

from course.lab_support.phase_06 import (  # noqa: F401 (given)
    OUTLIER_CHANNELS, channel_ratio, lab04_report, make_activations, make_weight, print_report)
from mini_vllm.quant import dequantize, quantize_per_channel, quantize_per_tensor, quantize_per_token


def smoothquant_scales(x_absmax: np.ndarray, w_absmax: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """One positive migration factor per input channel, from the channel maxima of X and W."""
    xa = np.asarray(x_absmax, dtype=np.float64)
    wa = np.asarray(w_absmax, dtype=np.float64)
    ok = (xa > 0) & (wa > 0)
    s = np.ones_like(xa)
    s[ok] = xa[ok] ** alpha / wa[ok] ** (1.0 - alpha)
    return s


def smooth(x: np.ndarray, w: np.ndarray, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x_hat, w_hat, s)`` for ``x`` (tokens, in) and ``w`` (out, in): ``x_hat @ w_hat.T == x @ w.T``."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    s = smoothquant_scales(np.abs(x).max(axis=0), np.abs(w).max(axis=0), alpha)
    return x / s, w * s, s


def w8a8_matmul(x: np.ndarray, w: np.ndarray, act: str = "per_tensor") -> np.ndarray:
    """Fake-quant W8A8 ``x @ w.T``: activations per tensor (or per token), weights per output channel."""
    if act == "per_tensor":
        xq, xs = quantize_per_tensor(x)
    elif act == "per_token":
        xq, xs = quantize_per_token(x)
    else:
        raise ValueError(f"act must be 'per_tensor' or 'per_token', got {act!r}")
    wq, ws = quantize_per_channel(w)
    return dequantize(xq, xs).astype(np.float64) @ dequantize(wq, ws).astype(np.float64).T


if __name__ == "__main__":
    print_report(lab04_report(sys.modules[__name__]))
