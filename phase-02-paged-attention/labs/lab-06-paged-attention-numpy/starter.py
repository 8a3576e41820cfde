"""Lab 02-06 (your work): the paged-attention data path in numpy, without a loop over tokens.

One layer's cache is ``kv_cache[2, num_blocks, block_size, Hkv, D]`` (0 = K, 1 = V), the
layout of ``mini_vllm.TinyTransformer.make_kv_caches``. Flattening the two block
dimensions gives ``num_blocks * block_size`` *slots*; token ``t`` of a request lives in

    slot(t) = block_table[t // block_size] * block_size + t % block_size

Two maps use that formula each step, in opposite directions:

- ``slot_mapping`` (write): one slot per token computed this step, where its new K/V go.
  Upstream builds it in a Triton kernel:
  vllm/v1/worker/block_table.py:378@0decac0 ("slot_ids = block_numbers * block_size + local_block_offsets").
- ``block_tables`` (read): every block of every request, handed to the attention kernel,
  which finds all earlier K/V through it.
"""
from __future__ import annotations

import numpy as np


def build_slot_mapping(block_table, block_size: int, start: int, num_tokens: int) -> np.ndarray:
    """Slots of positions ``start .. start + num_tokens - 1`` of one request (int64)."""
    raise NotImplementedError("TODO 1: map one request's positions to cache slots (README task 1)")


def build_batch_slot_mapping(block_tables: np.ndarray, block_size: int, num_computed: np.ndarray,
                             num_scheduled: np.ndarray) -> np.ndarray:
    """One step's slot mapping: request b computes positions ``num_computed[b] ..
    num_computed[b] + num_scheduled[b] - 1``; the requests' slots are concatenated in
    batch order (the token order of the step's flattened input).

    Vectorised the way the GPU runner does it: expand each request's row index and
    starting position per token, then apply the formula once.
    """
    raise NotImplementedError("TODO 2: map a whole step's new tokens to slots without a loop (README task 2)")


def write_kv(kv_cache: np.ndarray, slot_mapping, k: np.ndarray, v: np.ndarray) -> None:
    """Scatter token i's ``k[i]``, ``v[i]`` ([T, Hkv, D]) into slot ``slot_mapping[i]``, in place.

    The flat view shares memory with ``kv_cache``; upstream this is one kernel launch,
    vllm/_custom_ops.py:2591@0decac0 (reshape_and_cache_flash).
    """
    raise NotImplementedError("TODO 3: scatter new K and V into their slots in place (README task 3)")


def gather_slots(block_tables: np.ndarray, seq_lens: np.ndarray, block_size: int):
    """Slots of positions 0 .. max(seq_lens) - 1 of every request, [B, max_len], and the
    mask of real positions (``pos < seq_lens[b]``). Padded positions get slot 0's address
    computation like any other but are masked out; they never pick a value."""
    raise NotImplementedError("TODO 4: the slots of every position of every request, and the padding mask (README task 4)")


def paged_decode_attention(q: np.ndarray, kv_cache: np.ndarray, block_tables: np.ndarray, seq_lens,
                           scale: float | None = None) -> np.ndarray:
    """Decode attention for a batch: request b's one query ``q[b]`` ([H, D]) attends to its
    positions 0 .. seq_lens[b] - 1. Returns [B, H, D]. Query head h reads KV head
    h // (H // Hkv). One gather, one masked softmax, no Python loop."""
    raise NotImplementedError("TODO 5: decode attention through the block tables (README task 5)")
