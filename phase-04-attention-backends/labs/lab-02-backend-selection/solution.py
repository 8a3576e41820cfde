"""Lab 04-02 (reference): a pure-function model of vLLM's CUDA attention-backend selector.

At the pin the choice is made once per attention layer, at model construction:
``Attention.__init__`` calls vllm/v1/attention/selector.py:52@0decac0 (get_attn_backend),
which packs the layer's facts into an ``AttentionSelectorConfig`` and asks the platform. On CUDA, vllm/platforms/cuda.py:293@0decac0 (CudaPlatformBase.get_attn_backend_cls)
either validates the one backend the user named (``--attention-backend`` /
``attention_config.backend``) or walks a priority list and keeps the first backend whose
``validate_configuration`` (vllm/v1/attention/backend.py:271@0decac0 (AttentionBackend.validate_configuration))
returns no reasons.

This module mirrors that with plain data: ``BACKEND_SPECS`` holds what each backend
class declares (dtypes, KV-cache dtypes, kernel block sizes, head sizes, features,
compute capability), with the version-dependent FlashAttention rules as small
functions. Scope: every non-MLA configuration on CUDA, and MLA on compute capability
below 10 (the Blackwell MLA list has extra package and model-config checks).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

DECODER, ENCODER, ENCODER_ONLY, ENCODER_DECODER = "decoder", "encoder", "encoder_only", "encoder_decoder"
ALL_ATTN_TYPES = (DECODER, ENCODER, ENCODER_ONLY, ENCODER_DECODER)


@dataclass(frozen=True)
class CudaDevice:
    """What the selector learns from the machine: the compute capability, and which
    optional kernel packages import. ``fa4_installed`` stands for FlashAttention 4's
    CuTe DSL interface being present in ``vllm/vllm_flash_attn/cute``."""

    capability: tuple[int, int]
    flashinfer_installed: bool = True
    fa4_installed: bool = False


@dataclass(frozen=True)
class SelectorConfig:
    """The fields of upstream's ``AttentionSelectorConfig``
    (vllm/v1/attention/selector.py:21@0decac0 (AttentionSelectorConfig)) that this model
    uses. ``block_size`` is None unless the user set ``--block-size``.

    ``sliding_window`` is NOT an upstream selector field: it is here so a test can show
    that it changes nothing. Windowing is passed to the chosen implementation instead.
    """

    head_size: int
    dtype: str
    kv_cache_dtype: str | None = "auto"
    block_size: int | None = None
    use_mla: bool = False
    has_sink: bool = False
    use_sparse: bool = False
    use_mm_prefix: bool = False
    attn_type: str = DECODER
    use_non_causal: bool = False
    use_batch_invariant: bool = False
    sliding_window: int | None = None


@dataclass(frozen=True)
class BackendSpec:
    """What one backend class declares. Empty ``head_sizes`` means "no list";
    ``capability_ok`` None means any GPU; the optional ``*_rule`` functions replace the
    plain check where upstream overrides it."""

    name: str
    where: str
    dtypes: tuple[str, ...]
    kv_cache_dtypes: tuple[str, ...]
    kernel_block_sizes: tuple[int, ...]
    head_sizes: tuple[int, ...] = ()
    is_mla: bool = False
    is_sparse: bool = False
    sink: bool = False
    mm_prefix: bool = False
    attn_types: tuple[str, ...] = (DECODER,)
    non_causal: bool = False
    batch_invariant: bool = False
    requires_package: str | None = None
    capability_ok: Callable[[tuple[int, int]], bool] | None = None
    head_size_rule: Callable[[int, CudaDevice], bool] | None = None
    kv_cache_dtype_rule: Callable[[str, CudaDevice], bool] | None = None
    sink_rule: Callable[[CudaDevice, SelectorConfig], bool] | None = None
    combination_rule: Callable[[SelectorConfig, CudaDevice], str | None] | None = None


def flash_attn_version(device: CudaDevice, batch_invariant: bool = False) -> int:
    """FlashAttention version the FA backend would run, as
    vllm/v1/attention/backends/fa_utils.py:56@0decac0 (get_flash_attn_version) decides
    it with no head-size hint: FA3 on Hopper (9.x), FA4 on Blackwell (10.x) when its
    package is present, FA2 otherwise; batch invariance turns FA4 back into FA2."""
    major = device.capability[0]
    if major == 9:
        version = 3
    elif major == 10 and device.fa4_installed:
        version = 4
    else:
        version = 2
    if batch_invariant and version == 4:
        version = 2
    return version


def _fa4_supported(device: CudaDevice) -> bool:
    return device.fa4_installed and device.capability[0] in (9, 10, 11)


def _flashmla_combination(cfg: SelectorConfig, device: CudaDevice) -> str | None:
    """FlashMLA's dense kernel is Hopper-only; its sparse kernel also runs on 10.x."""
    if cfg.use_sparse:
        if device.capability[0] in (9, 10):
            return None
        return "FlashMLA Sparse is only supported on Hopper and Blackwell devices."
    return None if device.capability[0] == 9 else "FlashMLA Dense is only supported on Hopper devices."


_F16 = ("float16", "bfloat16")
_KV16 = ("auto", "float16", "bfloat16")
_KV_FP8 = ("fp8", "fp8_e4m3")

BACKEND_SPECS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "FLASH_ATTN", "vllm/v1/attention/backends/flash_attn.py:68",
            _F16, _KV16, (16,),
            attn_types=ALL_ATTN_TYPES, non_causal=True, batch_invariant=True,
            capability_ok=lambda cap: cap >= (8, 0),
            head_size_rule=lambda h, d: h % 8 == 0 and (h <= 256 or (_fa4_supported(d) and h <= 512)),
            kv_cache_dtype_rule=lambda kv, d: kv in _KV16
            or (kv in _KV_FP8 and flash_attn_version(d) == 3 and d.capability[0] == 9),
            sink_rule=lambda d, c: flash_attn_version(d, c.use_batch_invariant) in (3, 4),
            combination_rule=lambda c, d: "sink not supported on compute capability < 9.0"
            if c.has_sink and d.capability < (9, 0) else None,
        ),
        BackendSpec(
            "FLASHINFER", "vllm/v1/attention/backends/flashinfer.py:326",
            _F16, _KV16 + _KV_FP8 + ("fp8_e5m2", "nvfp4"), (16, 32, 64),
            head_sizes=(64, 128, 256, 512),
            requires_package="flashinfer",
            capability_ok=lambda cap: (7, 5) <= cap <= (12, 1),
            sink_rule=lambda d, c: d.capability[0] == 10 and not c.use_batch_invariant,
        ),
        BackendSpec(
            "TRITON_ATTN", "vllm/v1/attention/backends/triton_attn.py:271",
            _F16 + ("float32",),
            _KV16 + _KV_FP8 + ("fp8_e5m2", "int8_per_token_head", "fp8_per_token_head"), (16,),
            sink=True, mm_prefix=True, attn_types=ALL_ATTN_TYPES, batch_invariant=True,
            head_size_rule=lambda h, d: h >= 32,
        ),
        BackendSpec(
            "FLEX_ATTENTION", "vllm/v1/attention/backends/flex_attention.py:80",
            _F16 + ("float32",), _KV16, (16,),
            mm_prefix=True, attn_types=(DECODER, ENCODER_ONLY), non_causal=True, batch_invariant=True,
        ),
        BackendSpec(
            "TURBOQUANT", "vllm/v1/attention/backends/turboquant_attn.py:90",
            _F16, (), (16, 32, 64, 128),
            head_size_rule=lambda h, d: h > 0,
            kv_cache_dtype_rule=lambda kv, d: kv.startswith("turboquant_"),
        ),
        BackendSpec(
            "FLASH_ATTN_MLA", "vllm/v1/attention/backends/mla/flashattn_mla.py:43",
            _F16, _KV16, (16,), head_sizes=(320, 576), is_mla=True, batch_invariant=True,
            capability_ok=lambda cap: cap[0] == 9,
        ),
        BackendSpec(
            "FLASHMLA", "vllm/v1/attention/backends/mla/flashmla.py:47",
            _F16, _KV16 + _KV_FP8, (64,), head_sizes=(320, 576), is_mla=True,
            capability_ok=lambda cap: cap[0] in (9, 10),
            combination_rule=lambda c, d: _flashmla_combination(c, d),
        ),
        BackendSpec(
            "FLASHINFER_MLA", "vllm/v1/attention/backends/mla/flashinfer_mla.py:38",
            _F16, _KV16 + _KV_FP8, (32, 64), head_sizes=(320, 576), is_mla=True,
            requires_package="flashinfer",
            capability_ok=lambda cap: cap[0] == 10,
        ),
        BackendSpec(
            "TRITON_MLA", "vllm/v1/attention/backends/mla/triton_mla.py:36",
            _F16, _KV16 + _KV_FP8, (16,), is_mla=True, batch_invariant=True,
        ),
        BackendSpec(
            "FLASHMLA_SPARSE", "vllm/v1/attention/backends/mla/flashmla_sparse.py:93",
            ("bfloat16",), ("auto", "bfloat16", "fp8_ds_mla", "fp8"), (64,), head_sizes=(576,),
            is_mla=True, is_sparse=True,
            capability_ok=lambda cap: cap[0] in (9, 10),
        ),
    )
}


def backend_priorities(use_mla: bool, device: CudaDevice) -> list[str]:
    """The CUDA priority list, vllm/platforms/cuda.py:79@0decac0 (_get_backend_priorities):
    Blackwell (major 10) puts FlashInfer first; everything else FlashAttention first."""
    major = device.capability[0]
    if use_mla:
        if major == 10:
            raise ValueError("MLA on compute capability 10.x is outside this model")
        return ["FLASH_ATTN_MLA", "FLASHMLA", "FLASHINFER_MLA", "TRITON_MLA", "FLASHMLA_SPARSE"]
    if major == 10:
        return ["FLASHINFER", "FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION", "TURBOQUANT"]
    return ["FLASH_ATTN", "FLASHINFER", "TRITON_ATTN", "FLEX_ATTENTION", "TURBOQUANT"]


def invalid_reasons(name: str, cfg: SelectorConfig, device: CudaDevice) -> list[str]:
    """Why backend ``name`` cannot serve ``cfg`` on ``device``: upstream's
    ``validate_configuration`` checks, in its order and with its wording. A backend
    whose module fails to import reports ``["ImportError"]`` (cuda.py's ``except ImportError``)."""
    spec = BACKEND_SPECS[name]
    if spec.requires_package == "flashinfer" and not device.flashinfer_installed:
        return ["ImportError"]
    reasons = []
    if spec.head_size_rule is not None:
        head_ok = spec.head_size_rule(cfg.head_size, device)
    else:
        head_ok = not spec.head_sizes or cfg.head_size in spec.head_sizes
    if not head_ok:
        reasons.append("head_size not supported")
    if cfg.dtype not in spec.dtypes:
        reasons.append("dtype not supported")
    kv = cfg.kv_cache_dtype
    if kv is not None:
        kv_ok = spec.kv_cache_dtype_rule(kv, device) if spec.kv_cache_dtype_rule else kv in spec.kv_cache_dtypes
        if not kv_ok:
            reasons.append("kv_cache_dtype not supported")
    if cfg.block_size is not None and not any(cfg.block_size % s == 0 for s in spec.kernel_block_sizes):
        reasons.append("block_size not supported")
    if cfg.use_mm_prefix and not spec.mm_prefix:
        reasons.append("partial multimodal token full attention not supported")
    if cfg.use_mla != spec.is_mla:
        reasons.append("MLA not supported" if cfg.use_mla else "non-MLA not supported")
    sink_ok = spec.sink_rule(device, cfg) if spec.sink_rule else spec.sink
    if cfg.has_sink and not sink_ok:
        reasons.append("attention sinks not supported")
    if cfg.use_sparse != spec.is_sparse:
        reasons.append("sparse not supported" if cfg.use_sparse else "non-sparse not supported")
    if spec.capability_ok is not None and not spec.capability_ok(device.capability):
        reasons.append("compute capability not supported")
    if cfg.attn_type not in spec.attn_types:
        reasons.append(f"attention type {cfg.attn_type} not supported")
    if cfg.use_non_causal and not spec.non_causal:
        reasons.append("non-causal attention not supported")
    if cfg.use_batch_invariant and not spec.batch_invariant:
        reasons.append("batch invariance not supported")
    if spec.combination_rule is not None:
        why = spec.combination_rule(cfg, device)
        if why is not None:
            reasons.append(why)
    return reasons


def valid_backends(cfg: SelectorConfig, device: CudaDevice) -> list[str]:
    """Every backend of the priority list that accepts ``cfg``, in priority order: the
    list the engine prints as "potential backends"."""
    return [name for name in backend_priorities(cfg.use_mla, device) if not invalid_reasons(name, cfg, device)]


def select_backend(cfg: SelectorConfig, device: CudaDevice, selected: str | None = None) -> str:
    """The backend the engine would use. A named backend is validated alone and never
    replaced: if it cannot serve ``cfg`` the engine refuses to start. With none named,
    the highest-priority valid backend wins."""
    if selected is not None:
        reasons = invalid_reasons(selected, cfg, device)
        if reasons:
            raise ValueError(f"Selected backend {selected} is not valid for this configuration. Reason: {reasons}")
        return selected
    valid = valid_backends(cfg, device)
    if not valid:
        raise ValueError(f"No valid attention backend found for cuda with {cfg}")
    return valid[0]


def backend_from_log(text: str) -> tuple[str, list[str] | None] | None:
    """Parse the engine's startup log for the backend it chose.

    Auto selection logs ``Using FLASH_ATTN attention backend out of potential backends:
    ['FLASH_ATTN', ...].`` (cuda.py:378); a named backend logs ``Using
    AttentionBackendEnum.TRITON_ATTN backend.`` (cuda.py:318). Returns (name,
    candidates) with candidates None for a named backend; None if neither line is there.
    """
    auto_line = re.compile(r"Using (\w+) attention backend out of potential backends: \[([^\]]*)\]")
    forced_line = re.compile(r"Using AttentionBackendEnum\.(\w+) backend\.")
    found = None
    for line in text.splitlines():
        auto = auto_line.search(line)
        if auto:
            found = (auto.group(1), re.findall(r"'(\w+)'", auto.group(2)))
            continue
        forced = forced_line.search(line)
        if forced:
            found = (forced.group(1), None)
    return found


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_04 import print_selection_rows

    print_selection_rows(sys.modules[__name__])
