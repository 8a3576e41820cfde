"""Spec for lab 02-03: vLLM's KV pool arithmetic on paper, then against the real engine.

The CPU tests pin the arithmetic with the course's worked examples (Llama-3-8B, and the
OPT-125m capture quoted in the README). The two ``gpu`` tests start vLLM 0.22.1 on a tiny
local Llama and compare its startup log with the prediction.
"""
import json
import subprocess
from pathlib import Path

import pytest

from mini_vllm.config import ModelConfig
from mini_vllm.kv_memory import LLAMA_3_8B

GiB = 1 << 30


# --- paper -------------------------------------------------------------------------------

def test_requested_memory_is_the_utilization_share_rounded_up(lab):
    assert lab.requested_memory(80 * GiB, 0.9) == 77_309_411_328
    assert lab.requested_memory(GiB, 0.3) == 322_122_548, "task 1: ceil(322,122,547.2), not int()"


def test_llama_3_8b_fits_32_conversations_of_2048_tokens_in_8_gib(lab):
    assert LLAMA_3_8B.kv_bytes_per_token() == 131_072, "2 x 32 layers x 8 KV heads x 128 x 2 bytes"
    assert lab.num_gpu_blocks(8 * GiB, LLAMA_3_8B) == 4096, "task 2: 2 MiB per block (16 tokens, 32 layers)"
    assert lab.max_concurrency(4096, 2048) == 32.0, "task 3: 128 blocks per 2048-token request"


def test_num_gpu_blocks_divides_by_page_and_layers_and_floors(lab):
    assert lab.num_gpu_blocks(5_183_373_312, lab.OPT_125M) == 8788, "589,824 bytes per block for OPT-125m"
    assert lab.num_gpu_blocks(5_183_373_311, lab.OPT_125M) == 8787, "one byte short of a block is one block fewer"
    assert lab.num_gpu_blocks(8 * GiB, LLAMA_3_8B, block_size=32) == 2048
    assert lab.num_gpu_blocks(-1, LLAMA_3_8B) == 0, "no room left means 0 blocks, not a negative count"


def test_8788_blocks_print_as_140608_tokens_and_68_66x(lab):
    assert lab.max_concurrency(8788, 2048) == 68.65625, "task 3: 8788 / 128 exactly"
    assert lab.startup_log_lines(8788, 2048) == [
        "GPU KV cache size: 140,608 tokens",
        "Maximum concurrency for 2,048 tokens per request: 68.66x",
    ], "task 4: %.2f rounds 68.65625 up; tokens = int(concurrency x max_model_len)"


def test_concurrency_counts_whole_blocks_per_request(lab):
    assert lab.max_concurrency(100, 17, block_size=16) == 50.0, "17 tokens need 2 blocks, not 17/16 of one"
    assert lab.startup_log_lines(100, 17) == [
        "GPU KV cache size: 850 tokens",
        "Maximum concurrency for 17 tokens per request: 50.00x",
    ]


def test_available_bytes_for_8788_opt_blocks(lab):
    lo, hi = lab.available_bytes_for(8788, lab.OPT_125M)
    assert (lo, hi) == (5_183_373_312, 5_183_963_136), "task 6: [8788, 8789) x 589,824 bytes"
    assert lab.format_gib(lo) == lab.format_gib(hi) == "4.83", "the log's 2 decimals cannot tell these apart"


def test_parse_startup_log_reads_the_three_lines(lab):
    log = "\n".join([
        "INFO 11-23 12:00:00 [gpu_worker.py:467] Available KV cache memory: 4.83 GiB",
        "INFO 11-23 12:00:01 [kv_cache_utils.py:1733] " + "GPU KV cache size: 140,608 tokens",
        "INFO 11-23 12:00:01 [kv_cache_utils.py:1734] Maximum concurrency for 2,048 tokens per request: 68.66x",
    ])
    assert lab.parse_startup_log(log) == {
        "kv_cache_tokens": 140_608, "max_model_len": 2048, "max_concurrency": 68.66, "available_kv_gib": 4.83,
    }, "task 5: strip thousands separators"
    assert lab.parse_startup_log("nothing here") == {
        "kv_cache_tokens": None, "max_model_len": None, "max_concurrency": None, "available_kv_gib": None,
    }


def test_doubling_the_kv_budget_doubles_the_blocks_but_doubling_utilization_does_not(lab):
    total, non_kv = 80 * GiB, 4 * GiB
    kv_at = lambda util: lab.requested_memory(total, util) - non_kv  # noqa: E731
    small = lab.num_gpu_blocks(kv_at(0.3), LLAMA_3_8B)
    big = lab.num_gpu_blocks(kv_at(0.6), LLAMA_3_8B)
    assert (small, big) == (10_240, 22_528), "fixed costs come off the top: 2.2x, not 2x"
    assert lab.num_gpu_blocks(2 * kv_at(0.3), LLAMA_3_8B) == 2 * small


# --- the real engine (GPU) ------------------------------------------------------------------

def _model_shape(model_dir: str) -> ModelConfig:
    cfg = Path(model_dir) / "config.json"
    if not cfg.exists():
        pytest.skip(f"{model_dir} is not a local model dir; the prediction needs its config.json")
    return ModelConfig.from_hf_config(json.loads(cfg.read_text()))


def _total_gpu_memory() -> int:
    mib = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout.split()[0]
    return int(mib) * (1 << 20)


@pytest.mark.gpu
def test_gpu_startup_log_matches_the_prediction(lab, gpu_device, tiny_llama_dir, figures):
    """``kv_cache_memory_bytes`` fixes the budget, so the block count is exact."""
    shape = _model_shape(tiny_llama_dir)
    budget, block_size, max_len = 256 << 20, 16, 512
    got = lab.run_and_parse(tiny_llama_dir, {"kv_cache_memory_bytes": budget, "block_size": block_size,
                                             "max_model_len": max_len, "enforce_eager": True})
    predicted = lab.num_gpu_blocks(budget, shape, block_size)
    print(f"\npredicted {predicted} blocks; log: {got['kv_cache_tokens']} tokens, {got['max_concurrency']}x")
    figures("p02_lab03_predicted_blocks", predicted)
    figures("p02_lab03_logged_kv_tokens", got["kv_cache_tokens"])
    assert got["kv_cache_tokens"] == predicted * block_size, "the pool is exactly the predicted blocks"
    assert f"{got['max_concurrency']:.2f}" == f"{lab.max_concurrency(predicted, max_len, block_size):.2f}"


@pytest.mark.gpu
def test_gpu_doubling_the_kv_share_doubles_the_blocks(lab, gpu_device, tiny_llama_dir, figures):
    """Raise gpu_memory_utilization by exactly the first run's KV budget / total memory:
    the fixed costs stay, the KV share doubles, and so must the pool."""
    _model_shape(tiny_llama_dir)
    base = {"block_size": 16, "max_model_len": 512, "enforce_eager": True}
    u1 = 0.10
    first = lab.run_and_parse(tiny_llama_dir, {**base, "gpu_memory_utilization": u1})
    assert first["available_kv_gib"], "no 'Available KV cache memory' line in the log"
    u2 = round(u1 + first["available_kv_gib"] * GiB / _total_gpu_memory(), 4)
    second = lab.run_and_parse(tiny_llama_dir, {**base, "gpu_memory_utilization": u2})
    ratio = second["kv_cache_tokens"] / first["kv_cache_tokens"]
    print(f"\nutil {u1} -> {first['kv_cache_tokens']:,} tokens; util {u2} -> {second['kv_cache_tokens']:,}; x{ratio:.3f}")
    figures("p02_lab03_util_pair", [u1, u2])
    figures("p02_lab03_kv_tokens_pair", [first["kv_cache_tokens"], second["kv_cache_tokens"]])
    assert ratio == pytest.approx(2.0, abs=0.03)


def test_shared_system_prompt_multiplies_concurrency(lab):
    """60 GiB of KV for Llama-3-8B; every user sends a 4,096-token system prompt plus 50
    tokens of their own. Without sharing each user needs ceil(4146 / 16) = 260 blocks; with
    prefix caching the prompt's 256 blocks are stored once and each user adds 4."""
    blocks = lab.num_gpu_blocks(60 * GiB, LLAMA_3_8B)
    assert blocks == 30_720
    assert int(lab.max_concurrency(blocks, 4096 + 50)) == 118
    assert lab.max_concurrency(blocks - 256, 50) == 7_616.0
