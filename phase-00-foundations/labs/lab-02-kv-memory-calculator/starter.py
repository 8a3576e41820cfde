"""Lab 00-02: how many bytes the KV cache costs, and how many users fit. Your work: four formulas.

Upstream computes the same product per block rather than per token:
vllm/v1/kv_cache_interface.py:167@0decac0 (AttentionSpec.real_page_size_bytes) is
``2 * block_size * num_kv_heads * head_size * dtype_size`` for one layer, and
vllm/v1/core/kv_cache_utils.py:950@0decac0 ("num_blocks = int(available_memory // page_size // num_layers)")
turns free memory into a block count with the same floor division as
``max_concurrent_seqs`` below.
"""
from __future__ import annotations

import math

from course.lab_support.phase_00 import print_kv_budget
from mini_vllm.kv_memory import LLAMA_3_8B


def kv_bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int, dtype_bytes: int) -> int:
    """Bytes of cache one token holds: one K vector and one V vector per KV head, in every layer."""
    raise NotImplementedError("TODO 1: bytes of KV cache per token (README task 1)")


def kv_bytes_per_seq(bytes_per_token: int, seq_len: int, block_size: int = 1) -> int:
    """Cache held by one sequence of ``seq_len`` tokens, allocated in whole blocks of
    ``block_size`` tokens (``block_size=1``: no rounding)."""
    raise NotImplementedError("TODO 2: bytes of KV cache per sequence, in whole blocks (README task 2)")


def weight_bytes(num_params: float, dtype_bytes: float) -> int:
    """Bytes of the weights: every parameter stored once at ``dtype_bytes`` (which may be
    a fraction, 0.5 for 4-bit weights), in whole bytes."""
    raise NotImplementedError("TODO 3: bytes of the weights, in whole bytes (README task 3)")


def max_concurrent_seqs(gpu_bytes: int, weight_bytes: int, bytes_per_seq: int) -> int:
    """Full-length sequences whose cache fits next to the weights (0 if none)."""
    raise NotImplementedError("TODO 4: how many full sequences fit next to the weights (README task 4)")


if __name__ == "__main__":
    print_kv_budget(kv_bytes_per_token, kv_bytes_per_seq, max_concurrent_seqs, LLAMA_3_8B)
