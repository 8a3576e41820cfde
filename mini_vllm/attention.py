"""Attention math shared by the engine's model and the attention labs (numpy only).

Shapes: q [M, H, D] for M query tokens; k, v [N, Hkv, D]; H must be a multiple of Hkv
(grouped-query attention: query head h reads KV head h // (H // Hkv)). A paged layer
cache is one array [2, num_blocks, block_size, Hkv, D] (index 0 = K, 1 = V) and token
position p of a request lives at slot block_table[p // block_size] * block_size +
p % block_size.

Upstream the write is a fused kernel (vllm/_custom_ops.py:2591@0decac0 (reshape_and_cache_flash))
and the slots come from vllm/v1/worker/block_table.py:141@0decac0 (BlockTable.compute_slot_mapping);
the read is a kernel that dereferences the block table per tile. Here both are fancy
indexing, vectorised over tokens.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def _check_gqa(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[int, int]:
    if q.ndim != 3 or k.ndim != 3 or v.shape != k.shape:
        raise ValueError(f"need q [M,H,D] and k, v [N,Hkv,D]; got {q.shape}, {k.shape}, {v.shape}")
    num_heads, num_kv_heads = q.shape[1], k.shape[1]
    if num_heads % num_kv_heads or q.shape[2] != k.shape[2]:
        raise ValueError(f"H={num_heads} must be a multiple of Hkv={num_kv_heads} and head dims must match")
    return num_heads, num_kv_heads


def _scores(q: np.ndarray, k: np.ndarray, scale: float | None) -> np.ndarray:
    """Scaled q.k for every (kv head, group member, query, key): [Hkv, G, M, N]."""
    num_heads, num_kv_heads = _check_gqa(q, k, k)
    group = num_heads // num_kv_heads
    scale = q.shape[2] ** -0.5 if scale is None else scale
    qg = q.reshape(q.shape[0], num_kv_heads, group, q.shape[2]).transpose(1, 2, 0, 3)  # [Hkv, G, M, D]
    return (qg @ k.transpose(1, 2, 0)[:, None]) * scale  # one BLAS matmul per (kv head, group member)


def _causal_mask(num_q: int, num_k: int, start_pos: int, key_offset: int = 0) -> np.ndarray:
    """True where query i (absolute position start_pos + i) may see key j (position
    key_offset + j)."""
    qpos = start_pos + np.arange(num_q)[:, None]
    kpos = key_offset + np.arange(num_k)[None, :]
    return kpos <= qpos


def _apply_values(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[Hkv, G, M, N] weights x [N, Hkv, D] values -> [M, H, D]."""
    out = (p @ v.transpose(1, 0, 2)[:, None]).transpose(2, 0, 1, 3)  # [M, Hkv, G, D]
    return out.reshape(out.shape[0], -1, out.shape[-1])


def dense_causal_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, start_pos: int = 0, scale: float | None = None
) -> np.ndarray:
    """Reference causal attention: query i sits at position start_pos + i and sees keys
    0..start_pos + i. With start_pos = N - M this is one prefill chunk (or one decode
    step when M = 1) over a sequence whose first start_pos tokens are already cached."""
    _check_gqa(q, k, v)
    if start_pos < 0 or start_pos + q.shape[0] > k.shape[0]:
        raise ValueError(f"queries at {start_pos}..{start_pos + q.shape[0] - 1} need that many keys, got {k.shape[0]}")
    s = _scores(q, k, scale)
    s = np.where(_causal_mask(q.shape[0], k.shape[0], start_pos), s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return _apply_values(p, v)


def _slots(block_table, positions: np.ndarray, block_size: int, num_blocks: int) -> np.ndarray:
    table = np.asarray(block_table, dtype=np.int64)
    needed = int(positions.max()) // block_size + 1 if positions.size else 0
    if table.ndim != 1 or table.shape[0] < needed:
        raise ValueError(f"block table {table.tolist()} too short for {needed} blocks")
    blocks = table[positions // block_size]
    if blocks.size and (blocks.min() < 0 or blocks.max() >= num_blocks):
        raise ValueError(f"block table {table.tolist()} has ids outside [0, {num_blocks})")
    return blocks * block_size + positions % block_size


def gather_kv(kv_cache_layer: np.ndarray, block_table, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Read positions 0..seq_len-1 of one request back through its block table:
    returns contiguous k, v of shape [seq_len, Hkv, D]."""
    _, num_blocks, block_size = kv_cache_layer.shape[:3]
    slots = _slots(block_table, np.arange(seq_len), block_size, num_blocks)
    kv = kv_cache_layer[:, slots // block_size, slots % block_size]
    return kv[0], kv[1]


def write_kv(kv_cache_layer: np.ndarray, slot_mapping, k: np.ndarray, v: np.ndarray) -> None:
    """Store token t's k[t], v[t] at flat slot slot_mapping[t] (in place). Negative slots
    are padding and skipped, as upstream's PAD_SLOT_ID (-1)."""
    _, num_blocks, block_size = kv_cache_layer.shape[:3]
    slots = np.asarray(slot_mapping, dtype=np.int64)
    if slots.shape != (k.shape[0],) or k.shape != v.shape:
        raise ValueError(f"slot_mapping {slots.shape} must have one slot per token of k {k.shape} / v {v.shape}")
    keep = slots >= 0
    slots = slots[keep]
    if slots.size and slots.max() >= num_blocks * block_size:
        raise ValueError(f"slot {slots.max()} out of range for {num_blocks} blocks of {block_size}")
    kv_cache_layer[0, slots // block_size, slots % block_size] = k[keep]
    kv_cache_layer[1, slots // block_size, slots % block_size] = v[keep]


def paged_attention(
    q: np.ndarray,
    kv_cache_layer: np.ndarray,
    block_table,
    seq_len: int,
    start_pos: int,
    scale: float | None = None,
) -> np.ndarray:
    """Causal attention for one request whose K/V (positions 0..seq_len-1, including
    this step's tokens) are already written to the paged cache."""
    if start_pos + q.shape[0] != seq_len:
        raise ValueError(f"start_pos {start_pos} + {q.shape[0]} queries != seq_len {seq_len}")
    k, v = gather_kv(kv_cache_layer, block_table, seq_len)
    return dense_causal_attention(q, k, v, start_pos=start_pos, scale=scale)


class AttentionState(NamedTuple):
    """Softmax attention over a subset of keys, kept mergeable (flash-decoding):
    m = running max score [M, H], l = sum of exp(score - m) [M, H],
    acc = sum of exp(score - m) * v [M, H, D] (unnormalised).
    An empty or fully masked partition is m = -inf, l = 0, acc = 0."""

    m: np.ndarray
    l: np.ndarray
    acc: np.ndarray


def partial_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    scale: float | None = None,
    start_pos: int | None = None,
    key_offset: int = 0,
) -> AttentionState:
    """Attention state of q over one partition of keys. With ``start_pos`` set, query i
    only sees keys whose absolute position (key_offset + j) is <= start_pos + i."""
    num_heads, _ = _check_gqa(q, k, v)
    num_q, head_dim = q.shape[0], q.shape[2]
    if k.shape[0] == 0:
        return AttentionState(
            np.full((num_q, num_heads), -np.inf),
            np.zeros((num_q, num_heads)),
            np.zeros((num_q, num_heads, head_dim)),
        )
    s = _scores(q, k, scale)
    if start_pos is not None:
        s = np.where(_causal_mask(num_q, k.shape[0], start_pos, key_offset), s, -np.inf)
    m = s.max(axis=-1)  # [Hkv, G, M]
    p = np.exp(s - np.where(np.isneginf(m), 0.0, m)[..., None])
    l = p.sum(axis=-1)
    acc = _apply_values(p, v)
    to_mh = lambda x: x.transpose(2, 0, 1).reshape(num_q, num_heads)  # noqa: E731
    return AttentionState(to_mh(m), to_mh(l), acc)


def merge_attention_states(a: AttentionState, b: AttentionState) -> AttentionState:
    """Combine two partitions: rescale each to the joint max, then add. A side whose
    max is -inf contributes exactly 0 (no exp(-inf - -inf) = NaN).

    Upstream merges (output, log-sum-exp) pairs instead, which is the same algebra
    after normalisation: vllm/v1/attention/ops/merge_attn_states.py:9@0decac0 (merge_attn_states).
    """
    m = np.maximum(a.m, b.m)
    m_safe = np.where(np.isneginf(m), 0.0, m)
    wa = np.where(np.isneginf(a.m), 0.0, np.exp(a.m - m_safe))
    wb = np.where(np.isneginf(b.m), 0.0, np.exp(b.m - m_safe))
    return AttentionState(m, wa * a.l + wb * b.l, wa[..., None] * a.acc + wb[..., None] * b.acc)


def finalize(state: AttentionState) -> np.ndarray:
    """Normalised output [M, H, D]; a query that saw no key gets zeros, not NaN."""
    l = state.l[..., None]
    return np.divide(state.acc, l, out=np.zeros_like(state.acc), where=l > 0)


def _group_attention(q: np.ndarray, kv_cache_layer: np.ndarray, tables: np.ndarray, bias: np.ndarray,
                     scale: float) -> np.ndarray:
    """Attention for R requests that each bring M queries: q [R, M, H, D], tables
    [R, nb] of block ids, bias [R, M, nb * block_size] (0 where a key is visible, -inf
    where it is masked or padding). Returns [R, M, H, D].

    One gather copies every request's blocks out of the pool at once, then two batched
    matmuls (one BLAS call per request and KV head) do q.k and p.v; the transposes are
    strided views BLAS reads in place, so the gather is the only copy of K and V."""
    num_reqs, num_q, num_heads, head_dim = q.shape
    num_kv_heads = kv_cache_layer.shape[3]
    group = num_heads // num_kv_heads
    # [R, nb, block_size, Hkv, D] -> [R, nb * block_size, Hkv, D]; indexing K and V
    # separately keeps each gather contiguous, so the reshape is free.
    k = kv_cache_layer[0][tables].reshape(num_reqs, -1, num_kv_heads, head_dim)
    v = kv_cache_layer[1][tables].reshape(num_reqs, -1, num_kv_heads, head_dim)
    num_k = k.shape[1]
    # [R, M, Hkv, G, D] -> [R, Hkv, G * M, D]: each KV head's queries as the rows of one matrix.
    qg = q.reshape(num_reqs, num_q, num_kv_heads, group, head_dim).transpose(0, 2, 3, 1, 4)
    qg = qg.reshape(num_reqs, num_kv_heads, group * num_q, head_dim)
    s = (qg @ k.transpose(0, 2, 3, 1)).reshape(num_reqs, num_kv_heads, group, num_q, num_k)
    s *= scale
    s += bias[:, None, None]
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    out = s.reshape(num_reqs, num_kv_heads, group * num_q, num_k) @ v.transpose(0, 2, 1, 3)
    out = out.reshape(num_reqs, num_kv_heads, group, num_q, head_dim).transpose(0, 3, 1, 2, 4)
    return out.reshape(num_reqs, num_q, num_heads, head_dim)


class PagedBatch:
    """One step's decode metadata, computed once and read by every layer.

    Calling ``paged_attention`` per request per layer re-derives slots and masks each
    time; with 30 layers and 32 requests that is 960 calls a step, each too small for
    BLAS to pay off. Upstream builds attention metadata once per step
    (vllm/v1/attention/backends/cpu_attn.py:171@0decac0 (CPUAttentionMetadataBuilder.build))
    and splits the batch into decodes and prefills
    (vllm/v1/attention/backends/utils.py:533@0decac0 (split_decodes_and_prefills)):
    decodes go to one paged kernel, each prefill to its own attention call. Here every
    one-token (decode) request joins one padded group that ``decode_attention`` serves
    with one gather and two batched matmuls per layer; ``prefills`` lists the
    multi-token chunks (request index, first row, end row), which the model hands to
    ``paged_attention`` one at a time. The math is ``paged_attention``'s.
    """

    def __init__(self, block_tables, query_start_loc, seq_lens, kv_cache_layer: np.ndarray) -> None:
        _, num_blocks, block_size = kv_cache_layer.shape[:3]
        qsl = np.asarray(query_start_loc, dtype=np.int64)
        seq_lens = np.asarray(seq_lens, dtype=np.int64)
        q_lens = np.diff(qsl)
        if np.any(seq_lens < q_lens):
            raise ValueError(f"seq_lens {seq_lens.tolist()} must cover each request's {q_lens.tolist()} new tokens")
        self.prefills = [(int(r), int(qsl[r]), int(qsl[r + 1])) for r in np.flatnonzero(q_lens > 1)]
        decodes = np.flatnonzero(q_lens == 1)
        self.decode_rows = qsl[decodes]
        if not decodes.size:
            return
        tables = [np.asarray(block_tables[r], dtype=np.int64) for r in decodes]
        needed = -(-seq_lens[decodes] // block_size)
        self.decode_tables = np.zeros((decodes.size, needed.max()), dtype=np.int64)  # padding reads block 0, masked
        for i, (table, n) in enumerate(zip(tables, needed)):
            if table.ndim != 1 or table.shape[0] < n:
                raise ValueError(f"block table {table.tolist()} too short for {n} blocks")
            self.decode_tables[i, :n] = table[:n]
        if self.decode_tables.min() < 0 or self.decode_tables.max() >= num_blocks:
            raise ValueError(f"block tables {self.decode_tables.tolist()} have ids outside [0, {num_blocks})")
        visible = np.arange(self.decode_tables.shape[1] * block_size)[None, :] < seq_lens[decodes][:, None]
        self.decode_bias = np.where(visible, 0.0, -np.inf).astype(kv_cache_layer.dtype)[:, None, :]

    def decode_attention(self, q: np.ndarray, kv_cache_layer: np.ndarray, out: np.ndarray,
                         scale: float | None = None) -> None:
        """Fill the decode rows of ``out`` [T, H, D] with their attention over the cache."""
        if self.decode_rows.size:
            if scale is None:
                scale = q.shape[2] ** -0.5
            qd = q[self.decode_rows][:, None]
            out[self.decode_rows] = _group_attention(qd, kv_cache_layer, self.decode_tables, self.decode_bias, scale)[:, 0]
