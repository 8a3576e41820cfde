"""Lab 07-01 reference: the MoE forward, once per token and once per expert.

Shapes follow vLLM's fused MoE: ``hidden_states (T, H)``, ``w1 (E, 2I, H)`` (gate rows,
then up rows), ``w2 (E, H, I)``, ``topk_weights (T, k)``, ``topk_ids (T, k)``. The names
and signatures are ``mini_vllm.moe``'s, which are vLLM's.
"""
from __future__ import annotations

import numpy as np

from mini_vllm.moe import expert_forward, softmax


def fused_topk(gating_output: np.ndarray, topk: int, renormalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(topk_weights float32 (T, topk), topk_ids int32 (T, topk))``: each token's experts, best first."""
    probs = softmax(np.asarray(gating_output, dtype=np.float32), axis=-1)
    topk_ids = np.argsort(-probs, axis=-1, kind="stable")[:, :topk]
    topk_weights = np.take_along_axis(probs, topk_ids, axis=-1)
    if renormalize:
        topk_weights = topk_weights / topk_weights.sum(axis=-1, keepdims=True)
    return topk_weights.astype(np.float32), topk_ids.astype(np.int32)


def moe_forward_naive(hidden_states, w1, w2, topk_weights, topk_ids) -> np.ndarray:
    """The oracle: every token through each of its experts, one row at a time, ``(T, H)``."""
    T, H = hidden_states.shape
    out = np.zeros((T, H), dtype=np.result_type(hidden_states, w1, topk_weights))
    for t in range(T):
        row = hidden_states[t : t + 1]
        for j in range(topk_ids.shape[1]):
            e = topk_ids[t, j]
            out[t] += topk_weights[t, j] * expert_forward(row, w1[e], w2[e])[0]
    return out


def moe_permute(hidden_states: np.ndarray, topk_ids: np.ndarray, num_experts: int):
    """One row per (token, slot), grouped by expert.

    Returns ``(permuted_hidden_states (T*k, H), expert_first_token_offset (E+1,),
    permuted_idx (T*k,))``: ``permuted_idx[r]`` is the flat slot ``t*k + j`` that row ``r``
    came from, and expert ``e`` owns rows ``offset[e]:offset[e+1]``.
    """
    top_k = topk_ids.shape[1]
    flat = topk_ids.reshape(-1)
    permuted_idx = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=num_experts)
    expert_first_token_offset = np.zeros(num_experts + 1, dtype=np.int64)
    expert_first_token_offset[1:] = np.cumsum(counts)
    return hidden_states[permuted_idx // top_k], expert_first_token_offset, permuted_idx


def moe_unpermute(permuted_out: np.ndarray, permuted_idx: np.ndarray, topk_weights: np.ndarray) -> np.ndarray:
    """``(T, H)``: each permuted row weighted by its slot's combine weight and added to its token."""
    T, top_k = topk_weights.shape
    weighted = permuted_out * topk_weights.reshape(-1)[permuted_idx][:, None]
    out = np.zeros((T, permuted_out.shape[1]), dtype=weighted.dtype)
    np.add.at(out, permuted_idx // top_k, weighted)
    return out


def moe_forward_grouped(hidden_states, w1, w2, topk_weights, topk_ids) -> np.ndarray:
    """The same ``(T, H)`` as :func:`moe_forward_naive`, with one ``expert_forward`` call per used expert."""
    num_experts = w1.shape[0]
    x, offset, permuted_idx = moe_permute(hidden_states, topk_ids, num_experts)
    y = np.empty((x.shape[0], w2.shape[1]), dtype=np.result_type(x, w1))
    for e in range(num_experts):
        lo, hi = offset[e], offset[e + 1]
        if hi > lo:
            y[lo:hi] = expert_forward(x[lo:hi], w1[e], w2[e])
    return moe_unpermute(y, permuted_idx, topk_weights)
