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


# --------------------------------------------------------------------- lab 06-03

GROUP_SIZES = (16, 32, 64, 128, 256, 1024)


def channel_scaled(shape: tuple[int, int], sigma: float = 0.5, seed: int = 0) -> np.ndarray:
    """Gaussian weights whose input columns each get a log-normal magnitude (``exp(N(0, sigma))``).

    A crude model of a trained matrix, where some input channels carry larger weights than
    others: the loudest value in a long stretch of columns then overstates most of them.
    """
    rng = np.random.default_rng(seed)
    col = np.exp(rng.normal(0.0, sigma, size=shape[1]))
    return (rng.standard_normal(shape) * col[None, :]).astype(np.float32)


def lab03_sweep(lab: ModuleType, shape: tuple[int, int] = (256, 1024)) -> list[tuple[int, float, float, float]]:
    """Rows of ``(group_size, gaussian error, channel-scaled error, bytes per weight)``."""
    plain, scaled = gaussian(shape), channel_scaled(shape)
    rows = []
    for g in GROUP_SIZES:
        e_plain = relative_error(plain, lab.dequantize_grouped(*lab.quantize_grouped(plain, g), g))
        e_scaled = relative_error(scaled, lab.dequantize_grouped(*lab.quantize_grouped(scaled, g), g))
        rows.append((g, e_plain, e_scaled, lab.memory_bytes_grouped(shape, g) / (shape[0] * shape[1])))
    return rows


def print_lab03_table(lab: ModuleType) -> None:
    """The group-size table of lab 06-03's README."""
    print(f"{'group':>6} {'err gaussian':>13} {'err ch-scaled':>14} {'bytes/weight':>13} {'fp32/this':>10}")
    for g, e1, e2, bpw in lab03_sweep(lab):
        print(f"{g:>6} {e1:>13.4f} {e2:>14.4f} {bpw:>13.6f} {4 / bpw:>10.2f}")


# --------------------------------------------------------------------- lab 06-04

OUTLIER_CHANNELS = (17, 200)


def make_activations(outliers: bool = True, tokens: int = 128, hidden: int = 256, factor: float = 80.0,
                     seed: int = 0) -> np.ndarray:
    """Gaussian activations; with ``outliers``, channels 17 and 200 are ``factor`` times louder in every token."""
    x = np.random.default_rng(seed).standard_normal((tokens, hidden))
    if outliers:
        x[:, list(OUTLIER_CHANNELS)] *= factor
    return x


def make_weight(out_features: int = 256, in_features: int = 256, seed: int = 1) -> np.ndarray:
    """Gaussian weights with std 0.05, roughly the size of a trained projection's entries."""
    return np.random.default_rng(seed).standard_normal((out_features, in_features)) * 0.05


def channel_ratio(x: np.ndarray) -> float:
    """Loudest column's max|.| over the median column's; columns are input channels for X and W alike."""
    amax = np.abs(x).max(axis=0)
    return float(amax.max() / np.median(amax))


def lab04_report(lab: ModuleType) -> dict[str, float]:
    """Every number lab 06-04's README states, from the lab's own ``smooth`` and ``w8a8_matmul``."""
    from mini_vllm.quant import quantize_per_tensor

    out = {}
    for label, outliers in (("outlier", True), ("control", False)):
        x, w = make_activations(outliers), make_weight()
        ref = x @ w.T
        xh, wh, _ = lab.smooth(x, w)
        out[f"{label}_raw_error"] = relative_error(ref, lab.w8a8_matmul(x, w))
        out[f"{label}_smoothed_error"] = relative_error(ref, lab.w8a8_matmul(xh, wh))
        out[f"{label}_per_token_error"] = relative_error(ref, lab.w8a8_matmul(x, w, act="per_token"))
        quiet = np.ones(x.shape[1], dtype=bool)
        quiet[list(OUTLIER_CHANNELS)] = False
        out[f"{label}_quiet_codes_zero"] = float(np.mean(quantize_per_tensor(x)[0][:, quiet] == 0))
        out[f"{label}_x_absmax"] = float(np.abs(x).max())
        out[f"{label}_x_ratio_before"] = channel_ratio(x)
        out[f"{label}_x_ratio_after"] = channel_ratio(xh)
        out[f"{label}_w_ratio_before"] = channel_ratio(w)
        out[f"{label}_w_ratio_after"] = channel_ratio(wh)
        out[f"{label}_w_absmax_before"] = float(np.abs(w).max())
        out[f"{label}_w_absmax_after"] = float(np.abs(wh).max())
    x, w = make_activations(), make_weight()
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        xh, wh, _ = lab.smooth(x, w, alpha)
        out[f"alpha_{alpha:.2f}_error"] = relative_error(x @ w.T, lab.w8a8_matmul(xh, wh))
    return out
