"""Spec for lab 04-02: a pure-function model of the CUDA attention-backend selector.

The expected table below was worked out by hand from the upstream code at 0decac0: the
priority lists in vllm/platforms/cuda.py (_get_backend_priorities) and each backend
class's declarations (supported_dtypes, supported_kv_cache_dtypes, head sizes, kernel
block sizes, supports_* overrides). The "why" column names the deciding rule.
"""
import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from course.labkit import load_lab

lab_module = load_lab(__file__)
Dev, Cfg = lab_module.CudaDevice, lab_module.SelectorConfig

A100, L4, H100, B200, T4, V100 = (8, 0), (8, 9), (9, 0), (10, 0), (7, 5), (7, 0)
STD4 = ["FLASH_ATTN", "FLASHINFER", "TRITON_ATTN", "FLEX_ATTENTION"]

# (id, device, config, expected backend, expected "potential backends", why)
TABLE = [
    ("h100-llama", Dev(H100), Cfg(128, "bfloat16"), "FLASH_ATTN", STD4, "FA first in the non-Blackwell list"),
    ("a100-llama", Dev(A100), Cfg(128, "bfloat16"), "FLASH_ATTN", STD4, "same list on Ampere"),
    ("l4-llama", Dev(L4), Cfg(128, "bfloat16"), "FLASH_ATTN", STD4, "8.9 >= 8.0"),
    ("b200-llama", Dev(B200), Cfg(128, "bfloat16"), "FLASHINFER",
     ["FLASHINFER", "FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION"], "major 10 puts FlashInfer first"),
    ("t4-fp16", Dev(T4), Cfg(128, "float16"), "FLASHINFER", STD4[1:], "FA needs capability >= 8.0"),
    ("v100-fp16", Dev(V100), Cfg(128, "float16"), "TRITON_ATTN", STD4[2:], "FlashInfer needs >= 7.5"),
    ("h100-fp32", Dev(H100), Cfg(128, "float32"), "TRITON_ATTN", STD4[2:], "FA and FlashInfer: fp16/bf16 only"),
    ("h100-head96", Dev(H100), Cfg(96, "bfloat16"), "FLASH_ATTN",
     ["FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION"], "FlashInfer heads are 64/128/256/512"),
    ("h100-head20", Dev(H100), Cfg(20, "bfloat16"), "FLEX_ATTENTION", ["FLEX_ATTENTION"],
     "FA needs head % 8 == 0, Triton needs >= 32"),
    ("h100-head512", Dev(H100), Cfg(512, "bfloat16"), "FLASHINFER", STD4[1:], "FA > 256 needs FA4"),
    ("h100-head512-fa4", Dev(H100, fa4_installed=True), Cfg(512, "bfloat16"), "FLASH_ATTN", STD4,
     "FA4 present: FA takes heads up to 512"),
    ("a100-sinks", Dev(A100), Cfg(64, "bfloat16", has_sink=True), "TRITON_ATTN", ["TRITON_ATTN"],
     "FA sinks need FA3/4 and >= 9.0; FlashInfer sinks need 10.x"),
    ("h100-sinks", Dev(H100), Cfg(64, "bfloat16", has_sink=True), "FLASH_ATTN", ["FLASH_ATTN", "TRITON_ATTN"],
     "FA3 on Hopper has sinks"),
    ("b200-sinks", Dev(B200), Cfg(64, "bfloat16", has_sink=True), "FLASHINFER", ["FLASHINFER", "TRITON_ATTN"],
     "FlashInfer sinks via TRTLLM on 10.x; FA2 (no FA4) has none"),
    ("a100-fp8kv", Dev(A100), Cfg(128, "bfloat16", kv_cache_dtype="fp8"), "FLASHINFER",
     ["FLASHINFER", "TRITON_ATTN"], "FA fp8 KV needs FA3 on 9.x"),
    ("h100-fp8kv", Dev(H100), Cfg(128, "bfloat16", kv_cache_dtype="fp8"), "FLASH_ATTN",
     ["FLASH_ATTN", "FLASHINFER", "TRITON_ATTN"], "FA3 reads fp8 KV"),
    ("b200-encoder-only", Dev(B200), Cfg(128, "bfloat16", attn_type="encoder_only"), "FLASH_ATTN",
     ["FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION"], "FlashInfer is decoder-only"),
    ("b200-batch-invariant", Dev(B200), Cfg(128, "bfloat16", use_batch_invariant=True), "FLASH_ATTN",
     ["FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION"], "FlashInfer is not batch invariant"),
    ("h100-no-flashinfer", Dev(H100, flashinfer_installed=False), Cfg(128, "bfloat16"), "FLASH_ATTN",
     ["FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION"], "an import failure just drops a candidate"),
    ("h100-mm-prefix", Dev(H100), Cfg(256, "bfloat16", use_mm_prefix=True), "TRITON_ATTN",
     ["TRITON_ATTN", "FLEX_ATTENTION"], "only Triton and Flex do bidirectional image spans"),
    ("h100-turboquant", Dev(H100), Cfg(128, "bfloat16", kv_cache_dtype="turboquant_k8v4"), "TURBOQUANT",
     ["TURBOQUANT"], "no other backend reads a turboquant_* cache"),
    ("a100-mla", Dev(A100), Cfg(576, "bfloat16", use_mla=True), "TRITON_MLA", ["TRITON_MLA"],
     "FA-MLA and FlashMLA are Hopper kernels"),
    ("h100-mla", Dev(H100), Cfg(576, "bfloat16", use_mla=True), "FLASH_ATTN_MLA",
     ["FLASH_ATTN_MLA", "FLASHMLA", "TRITON_MLA"], "FA-MLA outranks FlashMLA at the pin"),
    ("h100-mla-fp8kv", Dev(H100), Cfg(576, "bfloat16", kv_cache_dtype="fp8", use_mla=True), "FLASHMLA",
     ["FLASHMLA", "TRITON_MLA"], "FA-MLA has no fp8 KV"),
    ("h100-mla-fp8kv-block16", Dev(H100), Cfg(576, "bfloat16", kv_cache_dtype="fp8", block_size=16, use_mla=True),
     "TRITON_MLA", ["TRITON_MLA"], "FlashMLA's kernel block is 64"),
    ("h100-mla-sparse", Dev(H100), Cfg(576, "bfloat16", use_mla=True, use_sparse=True), "FLASHMLA_SPARSE",
     ["FLASHMLA_SPARSE"], "only the sparse backend is sparse"),
]
IDS = [row[0] for row in TABLE]


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_selection_table(lab, row):
    _, device, cfg, expected, candidates, why = row
    assert lab.select_backend(cfg, device) == expected, why
    assert lab.valid_backends(cfg, device) == candidates, why


def test_priority_lists(lab):
    assert lab.backend_priorities(False, Dev(H100)) == STD4 + ["TURBOQUANT"]
    assert lab.backend_priorities(False, Dev(B200)) == ["FLASHINFER", "FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION",
                                                         "TURBOQUANT"], "Blackwell swaps the first two"
    assert lab.backend_priorities(True, Dev(A100)) == ["FLASH_ATTN_MLA", "FLASHMLA", "FLASHINFER_MLA", "TRITON_MLA",
                                                        "FLASHMLA_SPARSE"]
    with pytest.raises(ValueError, match="outside this model"):
        lab.backend_priorities(True, Dev(B200))


def test_flash_attn_version(lab):
    assert lab.flash_attn_version(Dev(A100)) == 2
    assert lab.flash_attn_version(Dev(H100)) == 3, "Hopper prefers FA3"
    assert lab.flash_attn_version(Dev(B200, fa4_installed=True)) == 4
    assert lab.flash_attn_version(Dev(B200)) == 2, "no FA4 package: back to FA2"
    assert lab.flash_attn_version(Dev(B200, fa4_installed=True), batch_invariant=True) == 2


def test_invalid_reasons_use_upstream_wording(lab):
    r = lab.invalid_reasons
    assert r("FLASH_ATTN", Cfg(128, "float32"), Dev(H100)) == ["dtype not supported"]
    assert r("FLASH_ATTN", Cfg(64, "bfloat16", has_sink=True), Dev(A100)) == [
        "attention sinks not supported", "sink not supported on compute capability < 9.0"]
    assert r("FLASH_ATTN", Cfg(128, "float16"), Dev(T4)) == ["compute capability not supported"]
    assert r("FLASH_ATTN", Cfg(576, "bfloat16", use_mla=True), Dev(H100)) == [
        "head_size not supported", "MLA not supported"]
    assert r("FLASHINFER", Cfg(96, "bfloat16"), Dev(H100)) == ["head_size not supported"]
    assert r("FLASHINFER", Cfg(128, "bfloat16"), Dev(H100, flashinfer_installed=False)) == ["ImportError"]
    assert r("FLASHINFER", Cfg(128, "bfloat16", attn_type="encoder_only"), Dev(B200)) == [
        "attention type encoder_only not supported"]
    assert r("TURBOQUANT", Cfg(128, "bfloat16"), Dev(H100)) == ["kv_cache_dtype not supported"]
    assert r("TRITON_MLA", Cfg(128, "bfloat16"), Dev(H100)) == ["non-MLA not supported"]
    assert r("FLASHMLA", Cfg(576, "bfloat16", block_size=16, use_mla=True), Dev(H100)) == ["block_size not supported"]


def test_named_backend_is_validated_alone_and_never_replaced(lab):
    assert lab.select_backend(Cfg(128, "bfloat16"), Dev(H100), selected="TRITON_ATTN") == "TRITON_ATTN", (
        "a named backend wins over a higher-priority one"
    )
    with pytest.raises(ValueError, match=r"Selected backend FLASH_ATTN is not valid.*dtype not supported"):
        lab.select_backend(Cfg(128, "float32"), Dev(H100), selected="FLASH_ATTN")


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_any_valid_backend_can_be_named(lab, row):
    _, device, cfg, _, candidates, _ = row
    for name in lab.backend_priorities(cfg.use_mla, device):
        if name in candidates:
            assert lab.select_backend(cfg, device, selected=name) == name
        else:
            with pytest.raises(ValueError, match="is not valid for this configuration"):
                lab.select_backend(cfg, device, selected=name)


def test_no_valid_backend_is_an_error(lab):
    with pytest.raises(ValueError, match="No valid attention backend"):
        lab.select_backend(Cfg(128, "bfloat16", block_size=8), Dev(H100))


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_sliding_window_is_not_a_selector_input(lab, row):
    _, device, cfg, expected, candidates, _ = row
    windowed = dataclasses.replace(cfg, sliding_window=4096)
    assert lab.select_backend(windowed, device) == expected, (
        "at the pin the window goes to the implementation, not to the selector"
    )


def test_backend_from_log(lab):
    auto = textwrap.dedent("""\
        INFO 11-24 10:00:01 [cuda.py:379] Using HND KV cache layout for FLASHINFER backend.
        INFO 11-24 10:00:01 [cuda.py:380] Using FLASH_ATTN attention backend out of potential backends: ['FLASH_ATTN', 'FLASHINFER', 'TRITON_ATTN', 'FLEX_ATTENTION'].
        """)
    assert lab.backend_from_log(auto) == ("FLASH_ATTN", STD4)
    forced = "(EngineCore pid=7) INFO 11-24 10:00:02 [cuda.py:318] Using AttentionBackendEnum.TRITON_ATTN backend.\n"
    assert lab.backend_from_log(forced) == ("TRITON_ATTN", None), "a named backend is logged as the enum member"
    assert lab.backend_from_log("INFO Using HND KV cache layout for FLASHINFER backend.\n") is None


def test_reasons_come_in_upstream_check_order(lab):
    got = lab.invalid_reasons("FLASH_ATTN", Cfg(20, "float32", kv_cache_dtype="fp8", block_size=24), Dev(T4))
    assert got == ["head_size not supported", "dtype not supported", "kv_cache_dtype not supported",
                   "block_size not supported", "compute capability not supported"], (
        "README task 3: head size, dtype, KV-cache dtype, block size ... compute capability, in that order"
    )


@pytest.mark.parametrize("block_size, ok", [(16, True), (32, True), (48, True), (8, False), (24, False)])
def test_a_user_block_size_needs_to_be_a_multiple_of_a_kernel_block(lab, block_size, ok):
    reasons = lab.invalid_reasons("FLASH_ATTN", Cfg(128, "bfloat16", block_size=block_size), Dev(H100))
    assert (reasons == []) == ok, (
        f"README task 3: FLASH_ATTN's kernel block is 16, so --block-size {block_size} is "
        f"{'fine (a multiple of 16)' if ok else 'refused (not a multiple of 16)'}"
    )


def test_the_last_selector_line_of_the_log_wins(lab):
    auto = ("INFO [cuda.py:380] Using FLASH_ATTN attention backend out of potential backends: "
            "['FLASH_ATTN', 'TRITON_ATTN'].")
    forced = "INFO [cuda.py:318] Using AttentionBackendEnum.TRITON_ATTN backend."
    later_auto = auto.replace("Using FLASH_ATTN attention", "Using TRITON_ATTN attention")
    assert lab.backend_from_log("\n".join([auto, later_auto])) == ("TRITON_ATTN", ["FLASH_ATTN", "TRITON_ATTN"]), (
        "README task 6: a log that holds two engines' start-ups reports the later one"
    )
    assert lab.backend_from_log("\n".join([forced, auto])) == ("FLASH_ATTN", ["FLASH_ATTN", "TRITON_ATTN"]), (
        "README task 6: an auto-selection line after a named-backend line wins"
    )
    assert lab.backend_from_log("\n".join([auto, forced])) == ("TRITON_ATTN", None), (
        "README task 6: a named-backend line after an auto-selection line wins"
    )


# ---------------------------------------------------------------- GPU: the real engine


def engine_log(model_dir, backend=None, env=None):
    """Start real vLLM on the tiny model (eager, small memory share) and return its log."""
    from course.gpu_fixtures import run_vllm

    kwargs = {"enforce_eager": True, "max_model_len": 128, "max_num_seqs": 4, "dtype": "bfloat16"}
    if backend is not None:
        kwargs["attention_backend"] = backend
    run = run_vllm(model_dir, ["attention backends"], llm_kwargs=kwargs, sampling={"max_tokens": 4}, env=env)
    return run.log


def device_and_config(lab, model_dir):
    """The model's inputs, read from this machine and the model's config.json."""
    import importlib.util

    import torch

    spec = importlib.util.find_spec("vllm.vllm_flash_attn")
    fa4 = spec is not None and (Path(spec.origin).parent / "cute" / "interface.py").exists()
    device = lab.CudaDevice(tuple(torch.cuda.get_device_capability()),
                            flashinfer_installed=importlib.util.find_spec("flashinfer") is not None,
                            fa4_installed=fa4)
    hf = json.loads((Path(model_dir) / "config.json").read_text())
    head = hf.get("head_dim") or hf["hidden_size"] // hf["num_attention_heads"]
    return device, lab.SelectorConfig(head, "bfloat16")


def backend_lines(log):
    return "\n".join(line for line in log.splitlines() if "backend" in line.lower() or "VLLM_ATTENTION" in line)


@pytest.mark.gpu
def test_engine_picks_the_predicted_backend_and_ignores_the_old_env_var(lab, gpu_device, tiny_llama_dir, figures):
    device, cfg = device_and_config(lab, tiny_llama_dir)
    predicted, candidates = lab.select_backend(cfg, device), lab.valid_backends(cfg, device)
    log = engine_log(tiny_llama_dir, env={"VLLM_ATTENTION_BACKEND": "TRITON_ATTN"})
    print(f"model inputs: {device}, {cfg}")
    print(backend_lines(log))
    seen = lab.backend_from_log(log)
    figures("p04_lab02_auto_backend", seen[0] if seen else None)
    figures("p04_lab02_auto_candidates", seen[1] if seen else None)
    assert seen == (predicted, candidates), f"model predicted {predicted} of {candidates}: which rule is off?"
    assert "Unknown vLLM environment variable detected: VLLM_ATTENTION_BACKEND" in log, (
        "at 0.22.1 VLLM_ATTENTION_BACKEND is gone: warned about, then ignored"
    )


@pytest.mark.gpu
def test_engine_obeys_a_named_backend(lab, gpu_device, tiny_llama_dir, figures):
    device, cfg = device_and_config(lab, tiny_llama_dir)
    predicted = lab.select_backend(cfg, device)
    others = [b for b in lab.valid_backends(cfg, device) if b != predicted]
    if not others:
        pytest.skip(f"only {predicted} can serve this model here")
    log = engine_log(tiny_llama_dir, backend=others[0])
    print(backend_lines(log))
    seen = lab.backend_from_log(log)
    figures("p04_lab02_named_backend", seen[0] if seen else None)
    assert seen == (others[0], None), "--attention-backend is validated alone and then used"
