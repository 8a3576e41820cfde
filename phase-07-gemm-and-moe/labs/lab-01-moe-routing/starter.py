"""Lab 07-01: the MoE forward, once per token and once per expert. Your work.

Shapes follow vLLM's fused MoE: ``hidden_states (T, H)``, ``w1 (E, 2I, H)`` (gate rows,
then up rows), ``w2 (E, H, I)``, ``topk_weights (T, k)``, ``topk_ids (T, k)``.
``expert_forward(rows, w1[e], w2[e])`` runs expert ``e`` on a block of rows; use it
everywhere an expert runs (one of the tests counts the calls).
"""
from __future__ import annotations

import numpy as np

from mini_vllm.moe import expert_forward, softmax  # noqa: F401 - both are yours to use


def route(router_logits: np.ndarray, top_k: int, renormalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Top-k experts per token and their combine weights, as Mixtral's router computes them.

    Return ``(topk_weights float32 (T, k), topk_ids int32 (T, k))``, best expert first.
    """
    raise NotImplementedError(
        "TODO 1: softmax over all experts, keep the top_k largest (stable sort: lower id wins a tie), "
        "divide by their sum when renormalize — see README step 1"
    )


def moe_forward_reference(hidden_states, w1, w2, topk_weights, topk_ids) -> np.ndarray:
    """The oracle: token by token, slot by slot, one expert on one row, weighted and added."""
    raise NotImplementedError(
        "TODO 2: two nested loops over tokens and slots, out[t] += weight * expert_forward(row) — see README step 2"
    )


def permute(hidden_states: np.ndarray, topk_ids: np.ndarray, num_experts: int):
    """One row per (token, slot), grouped by expert; tokens keep their order within a group.

    Return ``(permuted_hidden_states (T*k, H), expert_first_token_offset (E+1,),
    permuted_idx (T*k,))``: ``permuted_idx[r]`` is the flat slot ``t*k + j`` of row ``r``.
    """
    raise NotImplementedError(
        "TODO 3: stable argsort of topk_ids.reshape(-1), offsets from bincount + cumsum, "
        "rows = hidden_states[permuted_idx // k] — see README step 3"
    )


def unpermute(permuted_out: np.ndarray, permuted_idx: np.ndarray, topk_weights: np.ndarray) -> np.ndarray:
    """Weight each row by its slot's combine weight and add it into its token's output row."""
    raise NotImplementedError(
        "TODO 4: weights = topk_weights.reshape(-1)[permuted_idx]; accumulate into out[permuted_idx // k] "
        "with np.add.at (not +=) — see README step 4"
    )


def moe_forward_grouped(hidden_states, w1, w2, topk_weights, topk_ids) -> np.ndarray:
    """Permute, run each expert once on its contiguous rows, unpermute with the weights."""
    raise NotImplementedError(
        "TODO 5: permute, one expert_forward per expert on rows offset[e]:offset[e+1], unpermute — see README step 5"
    )
