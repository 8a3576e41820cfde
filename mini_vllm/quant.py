"""Quantization at numpy scale: scales, grids, packing, and the dispatch vLLM wraps them in.

Every scheme in vllm/model_executor/layers/quantization/ answers three questions: which
grid (int8, int4, fp8), how many values share one scale (tensor, channel, group, token),
and whether activations are quantized too. This module answers each one in a few lines
of numpy, *fake-quant* style: values are snapped to the grid and multiplied back to
float, so the rounding error is exact while the speed question is left to real kernels.

Four parts, in the order the phase teaches them:

1. int8 symmetric quantization, per tensor and per output channel, and the dequantize
   + matmul that a linear method's ``apply`` performs.
2. int4 with one scale per group of input columns, and two values packed per byte.
3. W8A8 (activations quantized too) and the SmoothQuant migration that tames loud
   activation channels.
4. The dispatch skeleton (``QuantizationConfig.get_quant_method`` ->
   ``LinearMethodBase.create_weights / apply``) with upstream's names, and a cost model
   of weight + KV-cache memory that predicts vLLM's KV block count per format.

No torch: arrays are numpy, and the "GPU" is a number of bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mini_vllm.config import ModelConfig
from mini_vllm.kv_memory import num_gpu_blocks

INT8_QMAX = 127
"""Symmetric int8 uses [-127, 127]; -128 is left out so that the grid is symmetric."""

INT4_QMAX = 7
"""Symmetric int4 uses [-7, 7]: 15 levels. -8 is left out for the same reason."""


# --------------------------------------------------------------------------- 1. int8


def _scale_from_absmax(absmax: np.ndarray, qmax: int) -> np.ndarray:
    """absmax / qmax, with 1.0 where absmax is 0.

    An all-zero row would otherwise get scale 0, and ``w / 0`` is NaN. Any non-zero scale
    represents zeros exactly, and 1.0 keeps the stored scale finite and obvious.
    """
    scale = np.asarray(absmax, dtype=np.float32) / np.float32(qmax)
    return np.where(scale == 0, np.float32(1.0), scale).astype(np.float32)


def _round_and_clip(v: np.ndarray, qmax: int) -> np.ndarray:
    """Round to the nearest integer, *then* clip to [-qmax, qmax], then narrow to int8.

    Clipping after rounding matters: a value that lands at 127.6 after the float
    division rounds to 128, which wraps to -128 in int8 if nothing clips it.
    ``np.rint`` rounds ties to even, like torch.round.
    """
    return np.clip(np.rint(v), -qmax, qmax).astype(np.int8)


def quantize_per_tensor(w: np.ndarray, qmax: int = INT8_QMAX, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One scale for the whole tensor: the loudest value sets everyone's step size.

    Returns ``(q, scale)`` with ``q`` int8 of ``w``'s shape and ``scale`` a 0-d float32.
    Pass ``scale`` to quantize with a fixed (static, calibrated) scale: values louder
    than calibration saw then saturate at +-qmax instead of wrapping around.
    This is what the online FP8 path does to a weight at load time:
    vllm/model_executor/layers/quantization/fp8.py:545@0decac0 ("ops.scaled_fp8_quant(layer.weight, scale=None)").
    FP8's exponent bits make one scale far less harmful there than on an integer grid.
    """
    w = np.asarray(w, dtype=np.float32)
    if scale is None:
        scale = _scale_from_absmax(np.max(np.abs(w)) if w.size else 0.0, qmax)
    scale = np.asarray(scale, dtype=np.float32)
    return _round_and_clip(w / scale, qmax), scale


def quantize_per_channel(w: np.ndarray, qmax: int = INT8_QMAX) -> tuple[np.ndarray, np.ndarray]:
    """One scale per output channel (row of an ``(out, in)`` weight).

    A row's scale can be applied *after* the integer dot product of that row, so a
    per-output-channel scale costs one multiply per output element in the GEMM epilogue.
    Returns ``(q, scales)`` with ``scales`` of shape ``(out,)``.
    """
    w = np.asarray(w, dtype=np.float32)
    scales = _scale_from_absmax(np.max(np.abs(w), axis=1), qmax)
    return _round_and_clip(w / scales[:, None], qmax), scales


def dequantize(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``q * scale`` with a 0-d scale (per tensor) or one scale per row (per channel)."""
    scales = np.asarray(scales, dtype=np.float32)
    if scales.ndim == 1:
        scales = scales[:, None]
    return q.astype(np.float32) * scales


def quant_linear(x: np.ndarray, q: np.ndarray, scales: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``x @ dequantize(q, scales).T (+ bias)``: the fake-quant ``apply`` of a linear method.

    A real kernel never materializes the dequantized weight; it multiplies the scale in
    the epilogue (FP8) or dequantizes tiles in registers (int4). The numbers match.
    """
    out = np.asarray(x, dtype=np.float32) @ dequantize(q, scales).T
    return out if bias is None else out + bias


def relative_error(ref: np.ndarray, approx: np.ndarray) -> float:
    """Frobenius ``||ref - approx|| / ||ref||``: the one accuracy number of this phase."""
    ref = np.asarray(ref, dtype=np.float64)
    denom = np.linalg.norm(ref)
    return float(np.linalg.norm(ref - np.asarray(approx, dtype=np.float64)) / denom) if denom else 0.0


def quantized_nbytes(q: np.ndarray, scales: np.ndarray) -> int:
    """Bytes a quantized tensor occupies: the integer payload plus its scales."""
    return int(q.nbytes + np.asarray(scales).nbytes)


# --------------------------------------------------------------------------- 2. int4


def quantize_grouped(w: np.ndarray, group_size: int = 128, qmax: int = INT4_QMAX) -> tuple[np.ndarray, np.ndarray]:
    """One scale per ``group_size`` consecutive input columns of each output row.

    With 15 levels, a per-row scale is too coarse: one loud weight anywhere in a row
    leaves the rest two or three levels. A group's scale follows its own local maximum.
    Returns ``q`` (int8 holding values in [-qmax, qmax], shape of ``w``) and ``scales``
    of shape ``(out, in // group_size)``; ``in`` must be a multiple of ``group_size``,
    as vllm/model_executor/layers/quantization/awq.py:198@0decac0 ("if input_size_per_partition % group_size != 0:") also requires.
    """
    w = np.asarray(w, dtype=np.float32)
    out_features, in_features = w.shape
    if in_features % group_size:
        raise ValueError(f"in_features={in_features} is not a multiple of group_size={group_size}")
    groups = w.reshape(out_features, in_features // group_size, group_size)
    scales = _scale_from_absmax(np.max(np.abs(groups), axis=2), qmax)
    q = _round_and_clip(groups / scales[:, :, None], qmax)
    return q.reshape(out_features, in_features), scales


def dequantize_grouped(q: np.ndarray, scales: np.ndarray, group_size: int = 128) -> np.ndarray:
    """Inverse of :func:`quantize_grouped`: each group's values times its scale."""
    out_features, in_features = q.shape
    groups = q.reshape(out_features, in_features // group_size, group_size).astype(np.float32)
    return (groups * np.asarray(scales, dtype=np.float32)[:, :, None]).reshape(out_features, in_features)


def pack_int4(q: np.ndarray) -> np.ndarray:
    """Two signed int4 values per byte: ``(rows, n)`` int8 -> ``(rows, n // 2)`` uint8.

    Each value is stored offset by 8 (so -7..7 becomes 1..15, an unsigned nibble); the
    even column goes in the low nibble, the odd column in the high nibble. GPTQ's
    ``uint4b8`` type is the same offset-by-8 idea, packed eight to an int32:
    vllm/model_executor/layers/quantization/auto_gptq.py:100@0decac0 ("scalar_types.uint4b8").
    AWQ interleaves the order instead:
    vllm/model_executor/layers/quantization/utils/quant_utils.py:804@0decac0 ("[0, 2, 4, 6, 1, 3, 5, 7]").
    """
    q = np.asarray(q)
    if q.shape[-1] % 2:
        raise ValueError(f"the packed dimension must be even, got {q.shape[-1]}")
    if q.min(initial=0) < -8 or q.max(initial=0) > 7:
        raise ValueError("int4 values must lie in [-8, 7]")
    u = (q.astype(np.int16) + 8).astype(np.uint8)
    return (u[..., 0::2] | (u[..., 1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_int4`: ``(rows, m)`` uint8 -> ``(rows, 2m)`` int8."""
    packed = np.asarray(packed, dtype=np.uint8)
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), dtype=np.int8)
    out[..., 0::2] = low
    out[..., 1::2] = high
    return out


def grouped_nbytes(shape: tuple[int, int], group_size: int, weight_bits: int = 4, scale_bytes: int = 2) -> int:
    """Bytes of a packed grouped weight: ``bits/8`` per weight plus one scale per group."""
    out_features, in_features = shape
    return out_features * in_features * weight_bits // 8 + out_features * (in_features // group_size) * scale_bytes


# --------------------------------------------------------------------------- 3. W8A8


def quantize_per_token(x: np.ndarray, qmax: int = INT8_QMAX) -> tuple[np.ndarray, np.ndarray]:
    """One scale per token (row of an activation ``(tokens, hidden)``).

    Same arithmetic as :func:`quantize_per_channel`, pointed at activations; computed at
    run time, which is what the dynamic per-token FP8 path does
    (vllm/model_executor/layers/quantization/fp8.py:312@0decac0 ("self.activation_quant_key = kFp8DynamicTokenSym")).
    """
    return quantize_per_channel(x, qmax)


def w8a8_matmul(x: np.ndarray, w: np.ndarray, act: str = "per_tensor") -> np.ndarray:
    """``x @ w.T`` with both sides int8: integer products, int32 sums, scales at the end.

    ``w`` gets per-output-channel scales; ``x`` gets one scale (``act="per_tensor"``) or
    one per token (``"per_token"``). Both scale vectors factor out of the dot product, so
    the kernel multiplies ``s_x[i] * s_w[j]`` once per output element, as
    ``cutlass_scaled_mm(a, b, scale_a, scale_b)`` does on the GPU.
    """
    if act == "per_tensor":
        xq, xs = quantize_per_tensor(x)
        xs = np.full((np.shape(x)[0], 1), xs, dtype=np.float32)
    elif act == "per_token":
        xq, xs = quantize_per_token(x)
        xs = xs[:, None]
    else:
        raise ValueError(f"act must be 'per_tensor' or 'per_token', got {act!r}")
    wq, ws = quantize_per_channel(w)
    acc = xq.astype(np.int32) @ wq.astype(np.int32).T
    return acc.astype(np.float64) * xs * ws[None, :]


def smoothquant_scales(x_absmax: np.ndarray, w_absmax: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """SmoothQuant's per-input-channel factor ``s_j = max|X_j|^alpha / max|W_j|^(1-alpha)``.

    ``x_absmax`` and ``w_absmax`` are per input channel (columns of X and of W). A channel
    that is zero on either side gets ``s = 1``: there is nothing to migrate.
    """
    xa = np.asarray(x_absmax, dtype=np.float64)
    wa = np.asarray(w_absmax, dtype=np.float64)
    ok = (xa > 0) & (wa > 0)
    s = np.ones_like(xa)
    s[ok] = xa[ok] ** alpha / wa[ok] ** (1.0 - alpha)
    return s


def smooth(x: np.ndarray, w: np.ndarray, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move activation loudness into the weights: ``X/s`` and ``W*s`` give the same ``X W^T``.

    Offline, ``1/s`` is folded into the previous op (a norm's gain), so inference pays
    nothing for it. Returns ``(x_hat, w_hat, s)``.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    s = smoothquant_scales(np.max(np.abs(x), axis=0), np.max(np.abs(w), axis=0), alpha)
    return x / s[None, :], w * s[None, :], s


# --------------------------------------------------------------------------- 4a. dispatch


class QuantizeMethodBase:
    """What every format implements; vllm/model_executor/layers/quantization/base_config.py:19@0decac0 (QuantizeMethodBase)."""

    def create_weights(self, layer: "LinearBase", input_size: int, output_size: int) -> None:
        """Allocate the (possibly quantized) parameters on ``layer``."""
        raise NotImplementedError

    def process_weights_after_loading(self, layer: "LinearBase") -> None:
        """Turn loaded weights into the layout ``apply`` wants (a no-op by default)."""

    def apply(self, layer: "LinearBase", x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """Run the layer's matmul with whatever its parameters hold."""
        raise NotImplementedError


class LinearMethodBase(QuantizeMethodBase):
    """The linear-layer specialization; vllm/model_executor/layers/linear.py:141@0decac0 (LinearMethodBase)."""


class UnquantizedLinearMethod(LinearMethodBase):
    """Plain float weights; vllm/model_executor/layers/linear.py:182@0decac0 (UnquantizedLinearMethod)."""

    def create_weights(self, layer: "LinearBase", input_size: int, output_size: int) -> None:
        layer.weight = np.zeros((output_size, input_size), dtype=np.float32)

    def apply(self, layer: "LinearBase", x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        out = np.asarray(x, dtype=np.float32) @ layer.weight.T
        return out if bias is None else out + bias


class Int8LinearMethod(LinearMethodBase):
    """Online int8, per output channel, weight-only: loads floats, stores int8 + scales.

    Shaped like Fp8OnlineLinearMethod: ``create_weights`` allocates the float weight the
    checkpoint fills in, ``process_weights_after_loading`` quantizes it and replaces it,
    and ``apply`` runs the dequantizing matmul. Upstream's version of the middle step:
    vllm/model_executor/layers/quantization/fp8.py:537@0decac0 (Fp8OnlineLinearMethod.process_weights_after_loading).
    """

    def create_weights(self, layer: "LinearBase", input_size: int, output_size: int) -> None:
        layer.weight = np.zeros((output_size, input_size), dtype=np.float32)
        layer.weight_scale = None

    def process_weights_after_loading(self, layer: "LinearBase") -> None:
        layer.weight, layer.weight_scale = quantize_per_channel(layer.weight)

    def apply(self, layer: "LinearBase", x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        return quant_linear(x, layer.weight, layer.weight_scale, bias)


class QuantizationConfig:
    """Parsed from a checkpoint; hands each layer its method.

    vllm/model_executor/layers/quantization/base_config.py:151@0decac0 (QuantizationConfig.get_quant_method).
    """

    def get_name(self) -> str:
        raise NotImplementedError

    def get_quant_method(self, layer: "LinearBase", prefix: str) -> QuantizeMethodBase | None:
        raise NotImplementedError


class Int8Config(QuantizationConfig):
    """``quantization="int8"`` in mini_vllm: every linear layer except ``ignored_layers``.

    Skipping a layer by prefix returns the unquantized method, the same move as
    vllm/model_executor/layers/quantization/fp8.py:185@0decac0 ("return UnquantizedLinearMethod()").
    """

    def __init__(self, ignored_layers: list[str] | None = None) -> None:
        self.ignored_layers = list(ignored_layers or [])

    def get_name(self) -> str:
        return "int8"

    def get_quant_method(self, layer: "LinearBase", prefix: str) -> QuantizeMethodBase | None:
        if not isinstance(layer, LinearBase):
            return None
        if any(prefix == name or prefix.startswith(name + ".") for name in self.ignored_layers):
            return UnquantizedLinearMethod()
        return Int8LinearMethod()


QUANTIZATION_METHODS: dict[str, type[QuantizationConfig]] = {"int8": Int8Config}
"""Name -> config class, as in vllm/model_executor/layers/quantization/__init__.py:144@0decac0 (method_to_config)."""


def get_quantization_config(name: str) -> type[QuantizationConfig]:
    """The registry lookup; unknown names fail loudly, as upstream's does."""
    if name not in QUANTIZATION_METHODS:
        raise ValueError(f"Invalid quantization method: {name}")
    return QUANTIZATION_METHODS[name]


class LinearBase:
    """A linear layer that does not know its format.

    The constructor asks the config for a method exactly once, as
    vllm/model_executor/layers/linear.py:272@0decac0 ("if quant_config is None:") does,
    then lets the method allocate the parameters; ``forward`` only calls ``apply``.
    """

    def __init__(self, input_size: int, output_size: int, quant_config: QuantizationConfig | None = None,
                 prefix: str = "") -> None:
        self.input_size = input_size
        self.output_size = output_size
        self.prefix = prefix
        self.bias: np.ndarray | None = None
        if quant_config is None:
            self.quant_method: QuantizeMethodBase = UnquantizedLinearMethod()
        elif (method := quant_config.get_quant_method(self, prefix=prefix)) is not None:
            self.quant_method = method
        else:
            raise ValueError("All linear layers should support quant method.")
        self.quant_method.create_weights(self, input_size, output_size)

    def load_weights(self, weight: np.ndarray, bias: np.ndarray | None = None) -> None:
        """Copy a checkpoint tensor in, then let the method post-process it."""
        weight = np.asarray(weight, dtype=np.float32)
        if weight.shape != (self.output_size, self.input_size):
            raise ValueError(f"{self.prefix or 'layer'}: expected {(self.output_size, self.input_size)}, got {weight.shape}")
        self.weight = weight.copy()
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float32)
        self.quant_method.process_weights_after_loading(self)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.quant_method.apply(self, x, self.bias)

    __call__ = forward


# --------------------------------------------------------------------------- 4b. cost model


@dataclass(frozen=True)
class QuantScheme:
    """How many bytes one linear-layer weight costs in a format.

    ``group_size=None`` means per-tensor or per-channel scales, a few bytes per layer:
    the model counts them as zero. With groups, each group adds ``scale_bytes`` plus a
    zero point of ``zero_bits`` (AWQ stores a packed 4-bit zero per group and column:
    vllm/model_executor/layers/quantization/awq.py:229@0decac0 ("qzeros = PackedvLLMParameter(")).
    ``act_bits`` does not change memory; it says whether the GEMM itself runs low-precision.
    """

    name: str
    weight_bits: int
    act_bits: int = 16
    group_size: int | None = None
    scale_bytes: int = 2
    zero_bits: int = 0

    def bytes_per_weight(self) -> float:
        extra = 0.0 if self.group_size is None else (self.scale_bytes + self.zero_bits / 8) / self.group_size
        return self.weight_bits / 8 + extra


SCHEMES: dict[str, QuantScheme] = {
    "fp16": QuantScheme("fp16", weight_bits=16, act_bits=16),
    "fp8_w8a8": QuantScheme("fp8_w8a8", weight_bits=8, act_bits=8),
    "int4_w4a16": QuantScheme("int4_w4a16", weight_bits=4, act_bits=16, group_size=128, scale_bytes=2, zero_bits=4),
}
"""The three columns of lab-02: baseline, FP8 W8A8, and AWQ-style int4 W4A16 (g128 + zeros)."""


def weight_bytes(model: ModelConfig, scheme: QuantScheme, dtype_bytes: int = 2) -> int:
    """Linear weights at the scheme's cost, everything else at ``dtype_bytes``."""
    return int(np.ceil(model.linear_params() * scheme.bytes_per_weight())) + model.other_params() * dtype_bytes


def kv_blocks_for_scheme(model: ModelConfig, scheme: QuantScheme, gpu_memory_bytes: int,
                         gpu_memory_utilization: float = 0.9, activation_bytes: int = 0, block_size: int = 16,
                         kv_dtype_bytes: int = 2) -> int:
    """KV blocks left on a card after the weights in ``scheme`` and the activations.

    vLLM requests ``gpu_memory_utilization`` of the card, subtracts what profiling saw
    (weights + peak activations + non-torch memory:
    vllm/v1/worker/gpu_worker.py:446@0decac0 ("self.available_kv_cache_memory_bytes = (")),
    and divides the rest by page size and layer count (``kv_memory.num_gpu_blocks``).
    ``activation_bytes`` stands in for everything profiling measures besides weights.
    """
    available = int(gpu_memory_bytes * gpu_memory_utilization) - weight_bytes(model, scheme) - activation_bytes
    return num_gpu_blocks(available, model, block_size, kv_dtype_bytes)



