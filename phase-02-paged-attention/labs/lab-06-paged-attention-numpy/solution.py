"""Lab 02-06 (reference): the paged-attention data path in numpy, without a loop over tokens.

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
    pos = np.arange(start, start + num_tokens)
    return np.asarray(block_table, dtype=np.int64)[pos // block_size] * block_size + pos % block_size


def build_batch_slot_mapping(block_tables: np.ndarray, block_size: int, num_computed: np.ndarray,
                             num_scheduled: np.ndarray) -> np.ndarray:
    """One step's slot mapping: request b computes positions ``num_computed[b] ..
    num_computed[b] + num_scheduled[b] - 1``; the requests' slots are concatenated in
    batch order (the token order of the step's flattened input).

    Vectorised the way the GPU runner does it: expand each request's row index and
    starting position per token, then apply the formula once.
    """
    num_computed = np.asarray(num_computed, dtype=np.int64)
    num_scheduled = np.asarray(num_scheduled, dtype=np.int64)
    req = np.repeat(np.arange(num_scheduled.size), num_scheduled)
    first_token = np.cumsum(num_scheduled) - num_scheduled  # query_start_loc[:-1]
    pos = num_computed[req] + np.arange(req.size) - first_token[req]
    blocks = np.asarray(block_tables, dtype=np.int64)[req, pos // block_size]
    return blocks * block_size + pos % block_size


def write_kv(kv_cache: np.ndarray, slot_mapping, k: np.ndarray, v: np.ndarray) -> None:
    """Scatter token i's ``k[i]``, ``v[i]`` ([T, Hkv, D]) into slot ``slot_mapping[i]``, in place.

    The flat view shares memory with ``kv_cache``; upstream this is one kernel launch,
    vllm/_custom_ops.py:2591@0decac0 (reshape_and_cache_flash).
    """
    two, num_blocks, block_size, num_kv_heads, head_dim = kv_cache.shape
    flat = kv_cache.reshape(2, num_blocks * block_size, num_kv_heads, head_dim)
    if not np.shares_memory(flat, kv_cache):
        raise ValueError("kv_cache must be contiguous so that writes through the flat view land in it")
    slots = np.asarray(slot_mapping, dtype=np.int64)
    flat[0, slots] = k
    flat[1, slots] = v


def gather_slots(block_tables: np.ndarray, seq_lens: np.ndarray, block_size: int):
    """Slots of positions 0 .. max(seq_lens) - 1 of every request, [B, max_len], and the
    mask of real positions (``pos < seq_lens[b]``). Padded positions get slot 0's address
    computation like any other but are masked out; they never pick a value."""
    seq_lens = np.asarray(seq_lens, dtype=np.int64)
    pos = np.arange(int(seq_lens.max()))
    mask = pos[None, :] < seq_lens[:, None]
    blocks = np.asarray(block_tables, dtype=np.int64)[:, pos // block_size]
    return blocks * block_size + pos % block_size, mask


def paged_decode_attention(q: np.ndarray, kv_cache: np.ndarray, block_tables: np.ndarray, seq_lens,
                           scale: float | None = None) -> np.ndarray:
    """Decode attention for a batch: request b's one query ``q[b]`` ([H, D]) attends to its
    positions 0 .. seq_lens[b] - 1. Returns [B, H, D]. Query head h reads KV head
    h // (H // Hkv). One gather, one masked softmax, no Python loop."""
    batch, num_heads, head_dim = q.shape
    _, num_blocks, block_size, num_kv_heads, _ = kv_cache.shape
    group = num_heads // num_kv_heads
    scale = head_dim ** -0.5 if scale is None else scale
    slots, mask = gather_slots(block_tables, seq_lens, block_size)
    flat = kv_cache.reshape(2, num_blocks * block_size, num_kv_heads, head_dim)
    k, v = flat[0, slots], flat[1, slots]  # [B, T, Hkv, D]
    qg = q.reshape(batch, num_kv_heads, group, head_dim)
    scores = np.einsum("bkgd,btkd->bkgt", qg, k) * scale
    scores = np.where(mask[:, None, None, :], scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    # Masked keys carry weight exactly 0, but 0 * inf is NaN: zero their values too.
    v = np.where(mask[:, :, None, None], v, 0.0)
    out = np.einsum("bkgt,btkd->bkgd", p, v)
    return out.reshape(batch, num_heads, head_dim)
