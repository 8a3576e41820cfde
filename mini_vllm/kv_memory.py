"""KV-cache memory arithmetic, written once: bytes per token, bytes per block, blocks per card.

vLLM sizes its cache in three moves: one layer's page is K and V for ``block_size``
tokens (vllm/v1/kv_cache_interface.py:167@0decac0 (AttentionSpec.real_page_size_bytes)),
every layer needs its own page per block, and the block count is whatever memory is left
divided by both (vllm/v1/core/kv_cache_utils.py:950@0decac0 ("num_blocks = int(available_memory // page_size // num_layers)")).
Phase 00 uses the per-token number, phase 02 the block count, phase 06 the same count
after a quantization method shrank the weights (``mini_vllm.quant.kv_blocks_for_scheme``).
"""

from __future__ import annotations

from mini_vllm.config import ModelConfig, check_int

KIB, MIB, GIB = 2**10, 2**20, 2**30


def kv_page_size_bytes(model: ModelConfig, block_size: int = 16, kv_dtype_bytes: int = 2) -> int:
    """One layer's K and V for ``block_size`` tokens."""
    check_int("block_size", block_size)
    check_int("kv_dtype_bytes", kv_dtype_bytes)
    return 2 * block_size * model.num_kv_heads * model.head_dim * kv_dtype_bytes


def num_gpu_blocks(available_kv_bytes: int, model: ModelConfig, block_size: int = 16, kv_dtype_bytes: int = 2) -> int:
    """Blocks that fit in ``available_kv_bytes`` when every layer holds one page per block
    (floored, never negative)."""
    page = kv_page_size_bytes(model, block_size, kv_dtype_bytes)
    return max(int(available_kv_bytes) // page // model.num_layers, 0)


# Public config.json shapes of the course's running examples.
LLAMA_3_8B = ModelConfig(name="Llama-3.1-8B", vocab_size=128256, hidden_size=4096, num_layers=32, num_heads=32,
                         num_kv_heads=8, head_dim=128, intermediate_size=14336, max_model_len=131072,
                         rope_theta=500000.0)
LLAMA_3_70B = ModelConfig(name="Llama-3.1-70B", vocab_size=128256, hidden_size=8192, num_layers=80, num_heads=64,
                          num_kv_heads=8, head_dim=128, intermediate_size=28672, max_model_len=131072,
                          rope_theta=500000.0)
MIXTRAL_8X7B = ModelConfig(name="Mixtral-8x7B", vocab_size=32000, hidden_size=4096, num_layers=32, num_heads=32,
                           num_kv_heads=8, head_dim=128, intermediate_size=14336, max_model_len=32768,
                           rope_theta=1e6, num_experts=8, num_experts_per_tok=2)
