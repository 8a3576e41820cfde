"""Lab 06-04: activation outliers break per-tensor W8A8; SmoothQuant moves them.

Fill in TODOs 1-3 (README "Tasks"). The data helpers and the report come from
``course.lab_support.phase_06``: ``python starter.py`` prints your numbers once the TODOs
are done.

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
    raise NotImplementedError("TODO 1: one migration factor per input channel (README task 1)")


def smooth(x: np.ndarray, w: np.ndarray, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x_hat, w_hat, s)`` for ``x`` (tokens, in) and ``w`` (out, in): ``x_hat @ w_hat.T == x @ w.T``."""
    raise NotImplementedError("TODO 2: apply the migration to both operands (README task 2)")


def w8a8_matmul(x: np.ndarray, w: np.ndarray, act: str = "per_tensor") -> np.ndarray:
    """Fake-quant W8A8 ``x @ w.T``: activations per tensor (or per token), weights per output channel."""
    raise NotImplementedError("TODO 3: fake-quant W8A8 matmul (README task 3)")


if __name__ == "__main__":
    print_report(lab04_report(sys.modules[__name__]))
