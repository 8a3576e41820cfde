"""Lab 06-04: activation outliers break per-tensor W8A8; SmoothQuant moves them.

Fill in TODOs 1-3 (README "Tasks"). Data helpers and ``report`` are given:
``python starter.py`` prints your numbers once the TODOs are done.

W8A8 quantizes both matmul operands. Weights get per-output-channel scales (lab-01's
quantizer, imported from mini_vllm). Activations only exist at run time, so they get one
cheap scale per tensor or per token. A few channels that are 80x louder than the rest set
that one scale, and the quiet channels lose their resolution. SmoothQuant divides each
input channel of X by ``s_j`` and multiplies the matching column of W by ``s_j``: the
product is unchanged, but the loudness now sits in W, where per-channel scales absorb it.
"""

from __future__ import annotations

import numpy as np

from mini_vllm.quant import dequantize, quantize_per_channel, quantize_per_tensor, quantize_per_token, relative_error


def smoothquant_scales(x_absmax: np.ndarray, w_absmax: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``s_j = max|X_j|**alpha / max|W_j|**(1 - alpha)`` per input channel ``j``; 1.0 where either is 0."""
    raise NotImplementedError("TODO 1: s_j = x_absmax**alpha / w_absmax**(1 - alpha), 1.0 where either max is 0 — see README step 1")


def smooth(x: np.ndarray, w: np.ndarray, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X / s, W * s, s)`` with ``s`` from the column maxima of ``x`` (tokens, in) and ``w`` (out, in)."""
    raise NotImplementedError("TODO 2: column maxima of |x| and |w|, s from TODO 1, return (x / s, w * s, s) — see README step 2")


def w8a8_matmul(x: np.ndarray, w: np.ndarray, act: str = "per_tensor") -> np.ndarray:
    """Fake-quant ``x @ w.T``: x int8 per tensor (or per token), w int8 per output channel."""
    raise NotImplementedError("TODO 3: quantize x per tensor (or per token), w per channel, dequantize both, multiply — see README step 3")


# --------------------------------------------------------------------- given: data + report

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


def report() -> dict[str, float]:
    """Every number the README states, from the functions above (``python solution.py``)."""
    out = {}
    for label, outliers in (("outlier", True), ("control", False)):
        x, w = make_activations(outliers), make_weight()
        ref = x @ w.T
        xh, wh, _ = smooth(x, w)
        out[f"{label}_raw_error"] = relative_error(ref, w8a8_matmul(x, w))
        out[f"{label}_smoothed_error"] = relative_error(ref, w8a8_matmul(xh, wh))
        out[f"{label}_per_token_error"] = relative_error(ref, w8a8_matmul(x, w, act="per_token"))
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
        xh, wh, _ = smooth(x, w, alpha)
        out[f"alpha_{alpha:.2f}_error"] = relative_error(x @ w.T, w8a8_matmul(xh, wh))
    return out


if __name__ == "__main__":
    for name, value in report().items():
        print(f"{name:28s} {value:.4f}")
