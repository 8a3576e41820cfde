"""Lab 04-02 (your work): a pure-function model of vLLM's CUDA attention-backend selector.

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
    """FlashAttention version the FA backend would run on this device. README task 1."""
    raise NotImplementedError("TODO 1: pick the FlashAttention version (README task 1)")


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
    """The CUDA priority list for this device, best first. README task 2."""
    raise NotImplementedError("TODO 2: return the priority list (README task 2)")


def invalid_reasons(name: str, cfg: SelectorConfig, device: CudaDevice) -> list[str]:
    """Why backend ``name`` cannot serve ``cfg`` on ``device``; [] when it can. README task 3."""
    raise NotImplementedError("TODO 3: collect the validation reasons (README task 3)")


def valid_backends(cfg: SelectorConfig, device: CudaDevice) -> list[str]:
    """The candidates the engine would log as potential backends. README task 4."""
    raise NotImplementedError("TODO 4: filter the priority list (README task 4)")


def select_backend(cfg: SelectorConfig, device: CudaDevice, selected: str | None = None) -> str:
    """The backend the engine runs, or ValueError. README task 5."""
    raise NotImplementedError("TODO 5: choose a backend or refuse (README task 5)")


def backend_from_log(text: str) -> tuple[str, list[str] | None] | None:
    """(name, candidates), (name, None) or None, read from a startup log. README task 6."""
    raise NotImplementedError("TODO 6: parse the selector's log line (README task 6)")


if __name__ == "__main__":
    import sys

    from course.lab_support.phase_04 import print_selection_rows

    print_selection_rows(sys.modules[__name__])
