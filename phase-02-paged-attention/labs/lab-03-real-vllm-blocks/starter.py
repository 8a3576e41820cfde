"""Lab 02-03 (your work): predict vLLM's KV block count and maximum concurrency, then check
the prediction against the engine's own startup log.

vLLM 0.22.1 decides the pool size once, at startup:

1. ``requested = ceil(total_gpu_memory * gpu_memory_utilization)``
   (vllm/v1/worker/utils.py:403@0decac0 (request_memory));
2. a profiling forward pass measures everything that is not KV cache (weights, peak
   activations, non-torch memory, CUDA graph estimate) and the rest is the KV budget
   (vllm/v1/worker/gpu_worker.py:447@0decac0 ("self.available_kv_cache_memory_bytes = (")),
   unless ``kv_cache_memory_bytes`` is given, which skips the subtraction;
3. the budget is cut into blocks: one block holds ``block_size`` tokens of K and V in
   *every* layer (vllm/v1/core/kv_cache_utils.py:950@0decac0 ("num_blocks = int(available_memory // page_size // num_layers)"));
4. the log reports the pool as tokens and as a concurrency
   (vllm/v1/core/kv_cache_utils.py:1709@0decac0 (_report_kv_cache_config)).

Steps 1, 3 and 4 are integer arithmetic you can do on paper; step 2 is the one number
you read from the log ("Available KV cache memory: X GiB").
"""
from __future__ import annotations

import math
import re

from mini_vllm.config import ModelConfig
from mini_vllm.kv_memory import LLAMA_3_8B, kv_page_size_bytes

GiB = 1 << 30
MiB = 1 << 20

OPT_125M = ModelConfig(num_layers=12, hidden_size=768, intermediate_size=3072, num_heads=12,
                      num_kv_heads=12, head_dim=64, vocab_size=50272)
"""facebook/opt-125m (multi-head attention: 12 KV heads of 64), the description's capture."""


def format_gib(num_bytes: int) -> str:
    """How vLLM prints a byte count in GiB: vllm/utils/mem_utils.py:27@0decac0 (format_gib)."""
    return f"{round(num_bytes / GiB, 2)}"


def requested_memory(total_memory: int, gpu_memory_utilization: float) -> int:
    """Bytes vLLM claims for itself: the utilization share of the *whole* card, rounded up."""
    raise NotImplementedError(
        "TODO 1: math.ceil(total_memory * gpu_memory_utilization) (README task 1)"
    )


def num_gpu_blocks(available_kv_bytes: int, shape: ModelConfig, block_size: int = 16, dtype_bytes: int = 2) -> int:
    """Blocks in the pool: the KV budget over (one layer's page x number of layers).

    A layer's page is ``2 * block_size * num_kv_heads * head_dim * dtype_bytes`` (K and V);
    every layer gets its own tensor of ``num_blocks`` pages, so a block id names the same
    row in all of them. Floors, and never goes negative.
    """
    raise NotImplementedError(
        "TODO 2: page = kv_page_size_bytes(shape, block_size, dtype_bytes); max(available // page // num_layers, 0) (README task 2)"
    )


def max_concurrency(num_blocks: int, max_model_len: int, block_size: int = 16) -> float:
    """How many requests of ``max_model_len`` tokens the pool holds at once.

    Each needs ``ceil(max_model_len / block_size)`` blocks:
    vllm/v1/core/kv_cache_utils.py:877@0decac0 (get_max_concurrency_for_kv_cache_config).
    """
    raise NotImplementedError(
        "TODO 3: num_blocks / ceil(max_model_len / block_size), in integers: -(-a // b) (README task 3)"
    )


def startup_log_lines(num_blocks: int, max_model_len: int, block_size: int = 16) -> list[str]:
    """The two lines vLLM logs about the pool, formatted as it formats them
    (vllm/v1/core/kv_cache_utils.py:1733@0decac0 ("GPU KV cache size: %s tokens")): tokens
    = int(concurrency x max_model_len) with thousands separators, concurrency with %.2f."""
    raise NotImplementedError(
        "TODO 4: tokens = int(concurrency * max_model_len); f-strings with {:,} and {:.2f} (README task 4)"
    )


_TOKENS = re.compile(r"GPU KV cache size: ([\d,]+) tokens")
_CONC = re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x")
_AVAIL = re.compile(r"Available KV cache memory: ([\d.]+) GiB")


def parse_startup_log(log: str) -> dict:
    """Pull the pool size out of a vLLM log: ``kv_cache_tokens``, ``max_model_len``,
    ``max_concurrency`` and ``available_kv_gib`` (the last seen of each; None if absent)."""
    raise NotImplementedError(
        "TODO 5: last match of _TOKENS, _CONC, _AVAIL; int() after removing commas; None when absent (README task 5)"
    )


def available_bytes_for(num_blocks: int, shape: ModelConfig, block_size: int = 16, dtype_bytes: int = 2):
    """The half-open byte range [lo, hi) of KV budgets that give exactly ``num_blocks``:
    the inverse of ``num_gpu_blocks``, for reading a capture backwards."""
    raise NotImplementedError(
        "TODO 6: per_block = page x num_layers; return (num_blocks * per_block, (num_blocks + 1) * per_block) (README task 6)"
    )


def run_and_parse(model: str, llm_kwargs: dict) -> dict:
    """Start real vLLM on ``model`` in a child process, generate once, return the parsed
    pool lines plus the whole log. GPU only; imports nothing heavy in this process."""
    from course.gpu_fixtures import run_vllm

    run = run_vllm(model, ["paged attention in one sentence:"], llm_kwargs=llm_kwargs, sampling={"max_tokens": 8})
    parsed = parse_startup_log(run.log)
    parsed["log"] = run.log
    parsed["output"] = run.outputs[0]["text"]
    return parsed
