"""Lab 07-01: the MoE forward, once per token and once per expert. Your work.

Shapes follow vLLM's fused MoE: ``hidden_states (T, H)``, ``w1 (E, 2I, H)`` (gate rows,
then up rows), ``w2 (E, H, I)``, ``topk_weights (T, k)``, ``topk_ids (T, k)``.
``expert_forward(rows, w1[e], w2[e])`` runs expert ``e`` on a block of rows; use it
everywhere an expert runs (one of the tests counts the calls).
"""
from __future__ import annotations

import numpy as np

from mini_vllm.moe import expert_forward, softmax


def fused_topk(gating_output: np.ndarray, topk: int, renormalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(topk_weights float32 (T, topk), topk_ids int32 (T, topk))``: each token's experts, best first."""
    raise NotImplementedError("TODO 1: route each token to its top experts (README task 1)")


def moe_forward_naive(hidden_states, w1, w2, topk_weights, topk_ids) -> np.ndarray:
    """The oracle: every token through each of its experts, one row at a time, ``(T, H)``."""
    raise NotImplementedError("TODO 2: the per-token oracle (README task 2)")


def moe_permute(hidden_states: np.ndarray, topk_ids: np.ndarray, num_experts: int):
    """One row per (token, slot), grouped by expert.

    Returns ``(permuted_hidden_states (T*k, H), expert_first_token_offset (E+1,),
    permuted_idx (T*k,))``: ``permuted_idx[r]`` is the flat slot ``t*k + j`` that row ``r``
    came from, and expert ``e`` owns rows ``offset[e]:offset[e+1]``.
    """
    raise NotImplementedError("TODO 3: group the rows by expert (README task 3)")


def moe_unpermute(permuted_out: np.ndarray, permuted_idx: np.ndarray, topk_weights: np.ndarray) -> np.ndarray:
    """``(T, H)``: each permuted row weighted by its slot's combine weight and added to its token."""
    raise NotImplementedError("TODO 4: combine the rows back per token (README task 4)")


def moe_forward_grouped(hidden_states, w1, w2, topk_weights, topk_ids) -> np.ndarray:
    """The same ``(T, H)`` as :func:`moe_forward_naive`, with one ``expert_forward`` call per used expert."""
    raise NotImplementedError("TODO 5: one expert call per expert (README task 5)")
