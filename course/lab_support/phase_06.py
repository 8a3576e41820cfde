"""Scaffolding phase 06's labs hand the learner: test data, report builders and printers.

Each lab's ``__main__`` block passes its own module in (``sys.modules[__name__]``), so
``python starter.py`` and ``python solution.py`` print the same report from whichever
implementation they hold, and the code that builds it exists once.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from mini_vllm.quant import relative_error


def gaussian(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Standard-normal float32 weights: the phase's stand-in for a trained matrix."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def print_report(report: dict[str, float]) -> None:
    """One ``name value`` line per figure, four decimals."""
    for name, value in report.items():
        print(f"{name:28s} {value:.4f}")


# --------------------------------------------------------------------- lab 06-01


def with_outlier_row(w: np.ndarray, row: int = 7, factor: float = 100.0) -> np.ndarray:
    """A copy of ``w`` whose row ``row`` is ``factor`` times louder."""
    w = np.array(w, dtype=np.float32, copy=True)
    w[row] *= factor
    return w


def lab01_report(lab: ModuleType) -> dict[str, float]:
    """Lab 06-01's numbers, computed with the lab's own quantizers."""
    w = gaussian((256, 512))
    x = gaussian((16, 512), seed=1)
    q, s = lab.quantize_per_channel(w)
    qt, st = lab.quantize_per_tensor(w)
    wo = with_outlier_row(w)
    rest = np.arange(256) != 7
    qo, so = lab.quantize_per_channel(wo)
    qto, sto = lab.quantize_per_tensor(wo)
    return {
        "per_channel_error": relative_error(w, lab.dequantize(q, s)),
        "per_tensor_error": relative_error(w, lab.dequantize(qt, st)),
        "fp32_over_int8": lab.memory_bytes(w) / lab.memory_bytes_quant(q, s),
        "fp16_over_int8": lab.memory_bytes(w.astype(np.float16)) / lab.memory_bytes_quant(q, s),
        "outlier_per_channel_error": relative_error(wo[rest], lab.dequantize(qo, so)[rest]),
        "outlier_per_tensor_error": relative_error(wo[rest], lab.dequantize(qto, sto)[rest]),
        "outlier_per_tensor_zeros": float(np.mean(qto[rest] == 0)),
        "matmul_error": relative_error(x @ w.T, lab.quant_linear(x, q, s)),
    }
