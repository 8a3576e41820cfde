#!/usr/bin/env python3
"""Phase 07: DeepSeek-style grouped top-k routing, expert load, and the EP all-to-all.

``grouped_topk`` is a numpy transcription of vLLM's reference path
(``vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py:81@0decac0 (grouped_topk)``):
score every expert (sigmoid for DeepSeek-V3), add the load-balancing bias, rate each
group of experts by the sum of its two best biased scores, keep the ``topk_group`` best
groups, pick ``topk`` experts inside them, and weight each by its *unbiased* score,
renormalised and scaled by ``routed_scaling_factor``.

The load experiment: 4,096 tokens per rank on 8 expert-parallel (EP) ranks, DeepSeek-V3's
router shape (256 experts in 8 groups, 4 groups per token, 8 experts per token), and
router logits with a per-expert popularity skew, the imbalance a trained router shows
before balancing. Each rank holds one group of 32 experts. A token on rank ``r`` must be
sent to every other rank that holds one of its experts (dispatch) and its results sent
back (combine); the bytes per copy are ``hidden × 2`` (bf16).

Run: ``python tools/plots/expert_load.py`` → ``phase-07-gemm-and-moe/figures/expert_load.png``.
"""
from __future__ import annotations

import numpy as np

import _common  # noqa: F401
from _common import ROOT, pyplot, save

OUT = ROOT / "phase-07-gemm-and-moe" / "figures" / "expert_load.png"

# DeepSeek-V3's config.json values that the router and the layer read.
DSV3 = {"n_routed_experts": 256, "n_group": 8, "topk_group": 4, "num_experts_per_tok": 8,
        "n_shared_experts": 1, "moe_intermediate_size": 2048, "hidden_size": 7168,
        "routed_scaling_factor": 2.5}


def _topk_ids(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries per row, largest first (ties: lower index first)."""
    part = np.argpartition(-x, k - 1, axis=-1)[:, :k]
    vals = np.take_along_axis(x, part, axis=-1)
    order = np.lexsort((part, -vals), axis=-1)
    return np.take_along_axis(part, order, axis=-1)


def grouped_topk(gating_output: np.ndarray, topk: int, renormalize: bool, num_expert_group: int,
                 topk_group: int, scoring_func: str = "softmax", routed_scaling_factor: float = 1.0,
                 e_score_correction_bias: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(gating_output, dtype=np.float64)
    if scoring_func == "softmax":
        z = np.exp(logits - logits.max(axis=-1, keepdims=True))
        scores = z / z.sum(axis=-1, keepdims=True)
    elif scoring_func == "sigmoid":
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        raise ValueError(f"Unsupported scoring function: {scoring_func}")
    t, e = scores.shape
    original = scores
    if e_score_correction_bias is not None:
        scores = scores + e_score_correction_bias[None, :]
        group_scores = np.partition(scores.reshape(t, num_expert_group, -1), -2, axis=-1)[..., -2:].sum(axis=-1)
    else:
        group_scores = scores.reshape(t, num_expert_group, -1).max(axis=-1)
    group_idx = np.sort(_topk_ids(group_scores, topk_group), axis=-1)
    # Upstream masks the other groups to -inf and takes top-k over all E; taking top-k over
    # the kept groups' experts only is the same selection, without sorting -inf entries.
    per_group = e // num_expert_group
    candidates = (group_idx[:, :, None] * per_group + np.arange(per_group)).reshape(t, -1)
    kept = np.take_along_axis(scores, candidates, axis=-1)
    topk_ids = np.take_along_axis(candidates, _topk_ids(kept, topk), axis=-1)
    topk_weights = np.take_along_axis(original if e_score_correction_bias is not None else scores,
                                      topk_ids, axis=-1)
    if renormalize:
        topk_weights = topk_weights / topk_weights.sum(axis=-1, keepdims=True)
    if routed_scaling_factor != 1.0:
        topk_weights = topk_weights * routed_scaling_factor
    return topk_weights.astype(np.float32), topk_ids.astype(np.int32)


def plain_topk(gating_output: np.ndarray, topk: int) -> np.ndarray:
    """Top-k over all experts (sigmoid scores), no groups: the ids only."""
    return _topk_ids(gating_output, topk).astype(np.int32)


def router_logits(tokens: int, experts: int, skew: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    popularity = skew * rng.standard_normal(experts)
    return rng.standard_normal((tokens, experts)) + popularity[None, :]


def dispatch_stats(topk_ids: np.ndarray, ep_size: int, experts: int, token_rank: np.ndarray) -> dict:
    per_rank = experts // ep_size
    dest = topk_ids // per_rank                                   # (T, k) owning rank
    remote_pairs = (dest != token_rank[:, None]).sum(axis=1)      # one copy per (token, expert)
    onehot = np.zeros((len(dest), ep_size), dtype=bool)
    np.put_along_axis(onehot, dest, True, axis=1)
    onehot[np.arange(len(dest)), token_rank] = False
    remote_ranks = onehot.sum(axis=1)                             # one copy per destination rank
    expert_load = np.bincount(topk_ids.ravel(), minlength=experts)
    rank_load = expert_load.reshape(ep_size, per_rank).sum(axis=1)
    return {"mean_remote_pairs": float(remote_pairs.mean()),
            "mean_remote_ranks": float(remote_ranks.mean()),
            "max_remote_ranks": int(remote_ranks.max()),
            "expert_load": expert_load,
            "rank_load": rank_load,
            "expert_max_over_mean": float(expert_load.max() / expert_load.mean()),
            "rank_max_over_mean": float(rank_load.max() / rank_load.mean())}


def all_to_all_seconds(tokens: int, copies_per_token: float, hidden: int, bandwidth: float,
                       dtype_bytes: int = 2) -> float:
    """Time for one rank to send its dispatch (the combine sends the same bytes back)."""
    return tokens * copies_per_token * hidden * dtype_bytes / bandwidth


def data(tokens_per_rank: int = 4096, ep_size: int = 8, skew: float = 0.25) -> dict:
    c = DSV3
    e, k, hidden = c["n_routed_experts"], c["num_experts_per_tok"], c["hidden_size"]
    tokens = tokens_per_rank * ep_size
    logits = router_logits(tokens, e, skew)
    token_rank = np.repeat(np.arange(ep_size), tokens_per_rank)
    _, grouped_ids = grouped_topk(logits, k, True, c["n_group"], c["topk_group"], "sigmoid",
                                  c["routed_scaling_factor"], np.zeros(e))
    flat_ids = plain_topk(logits, k)
    grouped = dispatch_stats(grouped_ids, ep_size, e, token_rank)
    flat = dispatch_stats(flat_ids, ep_size, e, token_rank)
    per_copy = hidden * 2
    return {
        "tokens_per_rank": tokens_per_rank, "ep_size": ep_size, "skew": skew,
        "grouped": grouped, "flat": flat,
        "bytes_per_copy": per_copy,
        "dispatch_mib_per_rank": {name: tokens_per_rank * s["mean_remote_ranks"] * per_copy / 2**20
                                  for name, s in (("grouped", grouped), ("flat", flat))},
        "dispatch_ms": {f"{name}@{bw_name}": 1e3 * all_to_all_seconds(tokens_per_rank, s["mean_remote_ranks"], hidden, bw)
                        for name, s in (("grouped", grouped), ("flat", flat))
                        for bw_name, bw in (("nvlink450", 450e9), ("ib50", 50e9))},
        "experts_considered": c["topk_group"] * e // c["n_group"],
        "shared_expert_intermediate": c["moe_intermediate_size"] * c["n_shared_experts"],
        "expert_params": 3 * hidden * c["moe_intermediate_size"],
        "active_expert_mlps": k + c["n_shared_experts"],
    }


def draw(d: dict, path=OUT):
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    for name in ("flat", "grouped"):
        load = np.sort(d[name]["expert_load"])[::-1]
        ax1.plot(load, label=f"{name} top-8 (max/mean {d[name]['expert_max_over_mean']:.2f})")
    ax1.set_xlabel("expert, busiest first")
    ax1.set_ylabel("(token, expert) pairs")
    ax1.set_title(f"{d['tokens_per_rank'] * d['ep_size']} tokens, 256 experts")
    ax1.legend(fontsize=7)
    ax1.grid(True, alpha=0.3)
    x = np.arange(d["ep_size"])
    ax2.bar(x - 0.2, d["flat"]["rank_load"], 0.4, label="flat")
    ax2.bar(x + 0.2, d["grouped"]["rank_load"], 0.4, label="grouped")
    ax2.axhline(d["grouped"]["rank_load"].mean(), color="black", lw=0.8, ls="--", label="mean")
    ax2.set_xlabel("EP rank (32 experts each)")
    ax2.set_ylabel("pairs to compute")
    ax2.set_title("the busiest rank sets the step time")
    ax2.legend(fontsize=7)
    return save(fig, path)


def main() -> None:
    d = data()
    print(f"experts a token may use under grouped routing: {d['experts_considered']} of 256")
    for name in ("flat", "grouped"):
        s = d[name]
        print(f"{name:8s} remote copies/token: per pair {s['mean_remote_pairs']:.2f}, per rank {s['mean_remote_ranks']:.2f}"
              f" (max {s['max_remote_ranks']}); expert max/mean {s['expert_max_over_mean']:.2f};"
              f" rank max/mean {s['rank_max_over_mean']:.3f}")
    print(f"bytes per copy {d['bytes_per_copy']}; dispatch MiB per rank {d['dispatch_mib_per_rank']}")
    print("dispatch ms:", {k: round(v, 3) for k, v in d["dispatch_ms"].items()})
    print(f"one expert MLP: {d['expert_params']:,} params; shared intermediate {d['shared_expert_intermediate']}")
    draw(d)


if __name__ == "__main__":
    main()
