"""Mixture-of-experts in numpy: route, permute, run each expert once, combine.

A MoE block replaces the dense MLP with ``E`` expert MLPs and a router. Each token is
sent to its ``top_k`` experts; the block's output is the router-weighted sum of those
experts' outputs. The maths is a per-token loop (:func:`moe_forward_naive`). The
engineering is a reorganisation of that loop into a few large matmuls, one per expert,
which is all a "grouped GEMM" is. Three equal formulations live here:

- :func:`moe_forward_naive`: per token, per slot, run one expert on one row (the oracle).
- :func:`moe_forward_grouped`: sort the ``T*k`` (token, expert) slots by expert, one
  matmul per expert over its contiguous rows, then scatter back with ``np.add.at``.
- :func:`fused_experts`: the shape of vLLM's Triton path. ``moe_align_block_size``
  pads each expert's rows to a multiple of ``block_size``; each block of rows runs
  against one expert; outputs land in a ``(T, k, H)`` buffer indexed by slot, so the
  combine is a dense sum over ``k`` (``moe_sum``) and no scatter is needed at all.

Weights use vLLM's stacked layout so the same arrays can be handed to
``vllm.model_executor.layers.fused_moe.fused_experts`` on a GPU:
``w1`` is ``(E, 2*I, H)`` (gate rows first, then up rows, as ``FusedMoE._load_w13``
fills ``w13_weight``) and ``w2`` is ``(E, H, I)``. The expert is SwiGLU, as in Mixtral:
``silu(x @ gate.T) * (x @ up.T) @ w2.T``.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "softmax",
    "fused_topk",
    "silu_and_mul",
    "expert_forward",
    "moe_forward_naive",
    "moe_permute",
    "moe_unpermute",
    "moe_forward_grouped",
    "moe_align_block_size",
    "moe_sum",
    "fused_experts",
    "FusedMoE",
    "MixtralMoE",
]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (max subtracted first)."""
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def fused_topk(
    gating_output: np.ndarray, topk: int, renormalize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Pick each token's ``topk`` experts and their combine weights.

    Mirrors ``vllm/model_executor/layers/fused_moe/router/fused_topk_router.py:69@0decac0 (fused_topk)``
    with ``scoring_func="softmax"``, whose CUDA kernel does, per row: softmax over all
    ``E`` logits in float32, ``topk`` rounds of argmax (ties go to the lower expert id,
    ``csrc/moe/topk_softmax_kernels.cu:525@0decac0 ("We want lower indices")``), and,
    when ``renormalize`` (Mixtral passes ``renormalize=True``), division by the sum of
    the selected probabilities. Softmax-then-renormalize equals a softmax over the
    ``topk`` selected logits alone, because the full-softmax denominator cancels.

    Returns ``(topk_weights float32 (T, topk), topk_ids int32 (T, topk))``, best first.
    The ids in a row are distinct: argmax never picks the same expert twice.
    """
    logits = np.asarray(gating_output, dtype=np.float32)
    if logits.ndim != 2:
        raise ValueError(f"gating_output must be (num_tokens, num_experts), got {logits.shape}")
    num_experts = logits.shape[1]
    if not 1 <= topk <= num_experts:
        raise ValueError(f"topk={topk} must be in [1, {num_experts}]")
    probs = softmax(logits, axis=-1)
    # A stable sort of -probs keeps the lower index first among equal probabilities.
    topk_ids = np.argsort(-probs, axis=-1, kind="stable")[:, :topk]
    topk_weights = np.take_along_axis(probs, topk_ids, axis=-1)
    if renormalize:
        denom = topk_weights.sum(axis=-1, keepdims=True)
        topk_weights = topk_weights / np.where(denom > 0, denom, 1.0)
    return topk_weights.astype(np.float32), topk_ids.astype(np.int32)


def silu_and_mul(x: np.ndarray) -> np.ndarray:
    """``silu(x[..., :d]) * x[..., d:]``: the gated activation vLLM's ``act_and_mul_kernel`` runs."""
    d = x.shape[-1] // 2
    gate, up = x[..., :d], x[..., d:]
    return gate / (1.0 + np.exp(-gate)) * up


def expert_forward(x: np.ndarray, w13: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """One SwiGLU expert on rows ``x (n, H)``: ``w13 (2I, H)``, ``w2 (H, I)`` -> ``(n, H)``."""
    return silu_and_mul(x @ w13.T) @ w2.T


def _check_shapes(hidden_states, w1, w2, topk_weights, topk_ids):
    T, H = hidden_states.shape
    E, two_i, h1 = w1.shape
    if h1 != H or w2.shape != (E, H, two_i // 2):
        raise ValueError(
            f"expected w1 (E, 2I, {H}) and w2 (E, {H}, I); got {w1.shape} and {w2.shape}"
        )
    if topk_ids.shape != topk_weights.shape or topk_ids.shape[0] != T:
        raise ValueError(f"topk shapes {topk_ids.shape}/{topk_weights.shape} do not match {T} tokens")
    if topk_ids.size and (topk_ids.min() < 0 or topk_ids.max() >= E):
        raise ValueError(f"expert ids must lie in [0, {E})")
    return T, H, E


def moe_forward_naive(hidden_states, w1, w2, topk_weights, topk_ids) -> np.ndarray:
    """The oracle: for every token, for every slot, run one expert on one row and add.

    ``T*k`` tiny matmuls. Obviously right, which is the point: every faster version in
    this module must equal it.
    """
    T, H, _ = _check_shapes(hidden_states, w1, w2, topk_weights, topk_ids)
    out = np.zeros((T, H), dtype=np.result_type(hidden_states, w1, topk_weights))
    for t in range(T):
        for j in range(topk_ids.shape[1]):
            e = int(topk_ids[t, j])
            out[t] += topk_weights[t, j] * expert_forward(hidden_states[t : t + 1], w1[e], w2[e])[0]
    return out


def moe_permute(hidden_states: np.ndarray, topk_ids: np.ndarray, num_experts: int):
    """Gather one row per (token, slot), ordered by expert.

    Returns ``(permuted_hidden_states (T*k, H), expert_first_token_offset (E+1,),
    permuted_idx (T*k,))``. ``permuted_idx[r]`` is the flat slot ``t*k + j`` that row
    ``r`` came from, so its token is ``permuted_idx[r] // k``; expert ``e`` owns rows
    ``offset[e]:offset[e+1]``. Same outputs (minus quant scales) as
    ``vllm/model_executor/layers/fused_moe/moe_permute_unpermute.py:7@0decac0 (moe_permute)``.
    A stable sort keeps tokens in their original order inside each expert's block;
    the counting sort a GPU runs (histogram, prefix sum, place) gives the same
    permutation when placement is in order.
    """
    k = topk_ids.shape[1]
    flat = topk_ids.reshape(-1)
    permuted_idx = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=num_experts)
    expert_first_token_offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    permuted_hidden_states = hidden_states[permuted_idx // k]
    return permuted_hidden_states, expert_first_token_offset, permuted_idx


def moe_unpermute(permuted_out: np.ndarray, permuted_idx: np.ndarray, topk_weights: np.ndarray) -> np.ndarray:
    """Scatter rows back to their tokens, weighted, summing the ``k`` rows of each token.

    A token owns ``k`` rows, so ``permuted_idx // k`` repeats every token id ``k`` times.
    ``out[tokens] += rows`` is a buffered fancy-index assignment: with repeated indices
    only the last write survives and the other ``k-1`` contributions vanish without an
    error. ``np.add.at`` is the unbuffered accumulate. vLLM's unpermute kernel avoids
    the scatter altogether: it inverts the permutation and each output row gathers its
    ``k`` inputs:
    ``csrc/moe/permute_unpermute_kernels/moe_permute_unpermute_kernel.inl:93@0decac0 ("__global__ void finalizeMoeRoutingKernel(")``.
    """
    T, k = topk_weights.shape
    weights = topk_weights.reshape(-1)[permuted_idx]
    out = np.zeros((T, permuted_out.shape[1]), dtype=np.result_type(permuted_out, topk_weights))
    np.add.at(out, permuted_idx // k, weights[:, None] * permuted_out)
    return out


def moe_forward_grouped(hidden_states, w1, w2, topk_weights, topk_ids) -> np.ndarray:
    """Permute by expert, one matmul per expert, unpermute with the combine weights.

    ``E`` matmuls of ``count[e]`` rows each instead of ``T*k`` single-row ones. No
    arithmetic changes, only its order, so the result equals :func:`moe_forward_naive`
    up to float rounding.
    """
    _, _, E = _check_shapes(hidden_states, w1, w2, topk_weights, topk_ids)
    x, offset, permuted_idx = moe_permute(hidden_states, topk_ids, E)
    y = np.zeros((x.shape[0], w2.shape[1]), dtype=np.result_type(x, w1))
    for e in range(E):
        lo, hi = offset[e], offset[e + 1]
        if hi > lo:
            y[lo:hi] = expert_forward(x[lo:hi], w1[e], w2[e])
    return moe_unpermute(y, permuted_idx, topk_weights)


def moe_align_block_size(topk_ids: np.ndarray, block_size: int, num_experts: int):
    """Sort slot ids by expert and pad every expert's run to a multiple of ``block_size``.

    Mirrors
    ``vllm/model_executor/layers/fused_moe/moe_align_block_size.py:11@0decac0 (moe_align_block_size)``.
    Returns ``(sorted_token_ids, expert_ids, num_tokens_post_padded)``:

    - ``sorted_token_ids``: flat slot ids ``t*k + j`` grouped by expert; padding
      entries hold the sentinel ``T*k`` (``topk_ids.size``), which the GEMM masks out.
    - ``expert_ids``: one expert per block of ``block_size`` rows, so a GEMM program
      that owns block ``b`` loads exactly one expert's weights.
    - ``num_tokens_post_padded``: ``sum(ceil(count[e] / block_size) * block_size)``.

    Unlike upstream, the arrays are trimmed to ``num_tokens_post_padded`` instead of
    being sized for the worst case, and rows inside an expert's run keep slot order
    (the CUDA kernel places them with ``atomicAdd``, so their order there can vary).
    Experts with no rows get no block.
    """
    flat = topk_ids.reshape(-1)
    sentinel = flat.size
    counts = np.bincount(flat, minlength=num_experts)
    padded = -(-counts // block_size) * block_size
    order = np.argsort(flat, kind="stable")
    sorted_token_ids = np.full(int(padded.sum()), sentinel, dtype=np.int32)
    expert_ids = np.repeat(np.arange(num_experts, dtype=np.int32), padded // block_size)
    start_in = 0
    start_out = 0
    for e in range(num_experts):
        c = int(counts[e])
        sorted_token_ids[start_out : start_out + c] = order[start_in : start_in + c]
        start_in += c
        start_out += int(padded[e])
    return sorted_token_ids, expert_ids, int(padded.sum())


def moe_sum(x: np.ndarray) -> np.ndarray:
    """``(T, k, H) -> (T, H)``: the combine, a dense reduction over the slot axis (``moe_sum_kernel``)."""
    return x.sum(axis=1)


def _blocked_gemm(a, w, sorted_token_ids, expert_ids, block_size, a_row_div, num_valid, out, weights=None):
    """One pass of the fused MoE GEMM over aligned blocks; ``out`` is slot-major ``(T*k, N)``.

    Block ``b`` reads rows ``sorted_token_ids[b*B:(b+1)*B]``, masks the sentinel,
    loads input row ``slot // a_row_div`` (the kernel's ``offs_token // top_k``),
    multiplies by expert ``expert_ids[b]``'s weight and stores to row ``slot``. Every
    slot appears exactly once across all blocks, so the stores never collide.
    """
    for b, e in enumerate(expert_ids):
        slots = sorted_token_ids[b * block_size : (b + 1) * block_size]
        slots = slots[slots < num_valid]
        if slots.size == 0:
            continue
        acc = a[slots // a_row_div] @ w[e].T
        if weights is not None:
            acc = acc * weights[slots][:, None]
        out[slots] = acc


def fused_experts(hidden_states, w1, w2, topk_weights, topk_ids, block_size: int = 16) -> np.ndarray:
    """The sequence of ``fused_experts_impl``, block by block, in numpy.

    Upstream,
    ``vllm/model_executor/layers/fused_moe/fused_moe.py:1664@0decac0 (fused_experts_impl)``
    runs: align (``moe_align_block_size``), GEMM 1 into a ``(T, k, 2I)`` cache,
    ``silu_and_mul``, GEMM 2 into a ``(T, k, H)`` cache with the router weight
    multiplied in (``MUL_ROUTED_WEIGHT``), then ``moe_sum`` over ``k``.
    Neither the permuted activations nor a scatter ever exist: the gather is folded
    into GEMM 1's loads and the unpermute into GEMM 2's stores.
    """
    T, H, E = _check_shapes(hidden_states, w1, w2, topk_weights, topk_ids)
    k = topk_ids.shape[1]
    num_valid = T * k
    sorted_token_ids, expert_ids, _ = moe_align_block_size(topk_ids, block_size, E)
    dtype = np.result_type(hidden_states, w1, topk_weights)
    cache1 = np.zeros((num_valid, w1.shape[1]), dtype=dtype)
    _blocked_gemm(hidden_states, w1, sorted_token_ids, expert_ids, block_size, k, num_valid, cache1)
    cache2 = silu_and_mul(cache1)
    cache3 = np.zeros((num_valid, H), dtype=dtype)
    _blocked_gemm(
        cache2, w2, sorted_token_ids, expert_ids, block_size, 1, num_valid, cache3,
        weights=topk_weights.reshape(-1),
    )
    return moe_sum(cache3.reshape(T, k, H))


class FusedMoE:
    """The experts of one MoE block: stacked weights plus routing settings.

    Same split of work as
    ``vllm/model_executor/layers/fused_moe/layer.py:73@0decac0 (FusedMoE)``: the model
    computes router logits, and ``forward(hidden_states, router_logits)`` does top-k,
    the grouped expert GEMMs and the combine.
    """

    def __init__(self, w13_weight: np.ndarray, w2_weight: np.ndarray, top_k: int, renormalize: bool = True):
        self.w13_weight = w13_weight
        self.w2_weight = w2_weight
        self.top_k = top_k
        self.renormalize = renormalize
        self.global_num_experts = w13_weight.shape[0]

    def forward(self, hidden_states: np.ndarray, router_logits: np.ndarray) -> np.ndarray:
        topk_weights, topk_ids = fused_topk(router_logits, self.top_k, self.renormalize)
        return fused_experts(hidden_states, self.w13_weight, self.w2_weight, topk_weights, topk_ids)


class MixtralMoE:
    """Mixtral's sparse MLP: a bias-free gate linear, then :class:`FusedMoE` with ``renormalize=True``.

    Upstream (``vllm/model_executor/models/mixtral.py:78@0decac0 (MixtralMoE)``) the
    whole forward is two calls: ``router_logits, _ = self.gate(hidden_states)`` and
    ``self.experts(hidden_states, router_logits)``.
    """

    def __init__(self, gate_weight: np.ndarray, w13_weight: np.ndarray, w2_weight: np.ndarray, top_k: int = 2):
        self.gate_weight = gate_weight
        self.experts = FusedMoE(w13_weight, w2_weight, top_k=top_k, renormalize=True)

    def forward(self, hidden_states: np.ndarray) -> np.ndarray:
        router_logits = hidden_states @ self.gate_weight.T
        return self.experts.forward(hidden_states, router_logits)
