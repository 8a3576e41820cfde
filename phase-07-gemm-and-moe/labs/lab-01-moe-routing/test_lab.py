"""Lab 07-01 spec: fused_topk routing, the per-token oracle, moe_permute/moe_unpermute, and grouped == oracle."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.moe import expert_forward


def make_experts(E=4, H=8, I=6, seed=0):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((E, 2 * I, H)) / np.sqrt(H)
    w2 = rng.standard_normal((E, H, I)) / np.sqrt(I)
    return w1, w2


# ---------------------------------------------------------------- TODO 1: fused_topk


def test_fused_topk_picks_top2_and_softmaxes_the_selected_logits(lab):
    logits = np.array([[2.0, 1.0, 0.1, 3.0]])
    weights, ids = lab.fused_topk(logits, 2)
    assert ids.tolist() == [[3, 0]], "ids must be best first: expert 3 (logit 3.0), then expert 0 (2.0)"
    # softmax([3, 2]) = [e/(e+1), 1/(e+1)]
    np.testing.assert_allclose(weights, [[0.7310586, 0.2689414]], rtol=1e-6)


def test_fused_topk_renormalized_weights_sum_to_one(lab):
    logits = np.random.default_rng(1).standard_normal((64, 8))
    weights, _ = lab.fused_topk(logits, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6,
                               err_msg="renormalize=True: divide the k kept probabilities by their sum")


def test_fused_topk_without_renormalize_keeps_full_softmax_probabilities(lab):
    logits = np.array([[2.0, 1.0, 0.1, 3.0]])
    weights, ids = lab.fused_topk(logits, 2, renormalize=False)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(weights, [[p[3], p[0]]], rtol=1e-6,
                               err_msg="renormalize=False (Qwen2-MoE's norm_topk_prob=False) keeps softmax over all E")
    assert round(float(weights.sum()), 4) == 0.8778


def test_fused_topk_breaks_ties_toward_the_lower_expert_id(lab):
    _, ids = lab.fused_topk(np.array([[1.0, 4.0, 4.0, 4.0]]), 2)
    assert ids.tolist() == [[1, 2]], "use a stable sort so equal probabilities keep ascending expert ids"


def test_fused_topk_returns_vllm_dtypes(lab):
    weights, ids = lab.fused_topk(np.zeros((3, 4)), 2)
    assert weights.dtype == np.float32 and ids.dtype == np.int32


# ---------------------------------------------------------------- TODO 2: moe_forward_naive


def test_naive_is_the_weighted_sum_of_the_chosen_experts(lab):
    w1, w2 = make_experts()
    x = np.random.default_rng(2).standard_normal((2, 8))
    ids = np.array([[1, 3], [0, 1]])
    weights = np.array([[0.75, 0.25], [0.5, 0.5]])
    out = lab.moe_forward_naive(x, w1, w2, weights, ids)
    want0 = 0.75 * expert_forward(x[:1], w1[1], w2[1]) + 0.25 * expert_forward(x[:1], w1[3], w2[3])
    want1 = 0.5 * expert_forward(x[1:], w1[0], w2[0]) + 0.5 * expert_forward(x[1:], w1[1], w2[1])
    np.testing.assert_allclose(out, np.vstack([want0, want1]), rtol=1e-12)


# ---------------------------------------------------------------- TODO 3: moe_permute

IDS = np.array([[2, 0], [1, 2], [2, 1]])  # 3 tokens, k=2, E=4 (expert 3 unused)


def test_moe_permute_offsets_count_rows_per_expert(lab):
    x = np.arange(3.0)[:, None] * np.ones((1, 2))
    _, offset, _ = lab.moe_permute(x, IDS, 4)
    assert offset.tolist() == [0, 1, 3, 6, 6], "offset[e+1] - offset[e] = rows of expert e; 6 = T*k in total"


def test_moe_permute_groups_slots_by_expert_in_token_order(lab):
    x = np.arange(3.0)[:, None] * np.ones((1, 2))
    permuted, _, permuted_idx = lab.moe_permute(x, IDS, 4)
    assert permuted_idx.tolist() == [1, 2, 5, 0, 3, 4], "flat slots t*k+j, sorted by expert, stable"
    assert permuted[:, 0].tolist() == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0], "row r holds token permuted_idx[r] // k"


# ---------------------------------------------------------------- TODO 4: moe_unpermute


def test_moe_unpermute_adds_every_row_of_a_token(lab):
    """The pitfall: token ids repeat k times; ``out[tokens] += rows`` keeps one of them."""
    rows = np.array([[1.0], [10.0], [100.0], [1000.0]])
    permuted_idx = np.array([0, 2, 1, 3])  # k=2: rows 0 and 2 belong to token 0, rows 1 and 3 to token 1
    weights = np.array([[0.5, 0.25], [1.0, 2.0]])
    out = lab.moe_unpermute(rows, permuted_idx, weights)
    # token 0: 0.5 * 1 + 0.25 * 100 = 25.5; token 1: 1.0 * 10 + 2.0 * 1000 = 2010
    np.testing.assert_allclose(out, [[25.5], [2010.0]], err_msg=(
        "a token's k rows must all be added: use np.add.at(out, permuted_idx // k, weighted_rows); "
        "fancy-index += drops repeated indices"))


def test_moe_permute_then_moe_unpermute_round_trips_the_input(lab):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 8))
    weights, ids = lab.fused_topk(rng.standard_normal((10, 5)), 3)
    permuted, _, permuted_idx = lab.moe_permute(x, ids, 5)
    np.testing.assert_allclose(lab.moe_unpermute(permuted, permuted_idx, weights), x, rtol=1e-5, atol=1e-6,
                               err_msg="weights sum to 1 per token, so gathering k copies and combining is identity")


# ---------------------------------------------------------------- TODO 5: grouped


def test_grouped_runs_each_used_expert_once_on_all_its_rows(lab, monkeypatch):
    calls = []

    def spy(rows, w13, w2):
        calls.append(rows.shape[0])
        return expert_forward(rows, w13, w2)

    monkeypatch.setattr(lab, "expert_forward", spy)
    w1, w2 = make_experts()
    x = np.random.default_rng(4).standard_normal((3, 8))
    lab.moe_forward_grouped(x, w1, w2, np.full((3, 2), 0.5), IDS)
    assert calls == [1, 2, 3], "one call per used expert (0, 1, 2), with 1, 2 and 3 rows; none for expert 3"


def test_grouped_equals_naive_on_a_mixtral_shaped_layer(lab):
    rng = np.random.default_rng(5)
    w1, w2 = make_experts(E=8, H=16, I=12, seed=5)
    x = rng.standard_normal((32, 16))
    weights, ids = lab.fused_topk(rng.standard_normal((32, 8)), 2)
    ref = lab.moe_forward_naive(x, w1, w2, weights, ids)
    np.testing.assert_allclose(lab.moe_forward_grouped(x, w1, w2, weights, ids), ref, rtol=1e-6, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 16), E=st.integers(1, 6), k=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_grouped_equals_naive_for_any_routing(lab, T, E, k, seed):
    k = min(k, E)
    rng = np.random.default_rng(seed)
    w1, w2 = make_experts(E=E, seed=seed)
    x = rng.standard_normal((T, 8))
    weights, ids = lab.fused_topk(rng.standard_normal((T, E)), k)
    ref = lab.moe_forward_naive(x, w1, w2, weights, ids)
    np.testing.assert_allclose(lab.moe_forward_grouped(x, w1, w2, weights, ids), ref, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- boundaries the worked examples miss


def test_fused_topk_ties_among_many_equal_logits_keep_ascending_ids(lab):
    logits = np.zeros((3, 64))
    logits[:, ::2] = 1.0  # 32 experts tie for first place
    weights, ids = lab.fused_topk(logits, 4)
    assert ids.tolist() == [[0, 2, 4, 6]] * 3, \
        "among equal probabilities the lower expert id wins: only a STABLE sort guarantees it past 16 experts (TODO 1)"
    np.testing.assert_allclose(weights, 0.25, rtol=1e-6)


def test_fused_topk_renormalize_false_keeps_probabilities_of_all_experts(lab):
    weights, ids = lab.fused_topk(np.log(np.array([[0.1, 0.6, 0.3]])), 1, renormalize=False)
    assert ids.tolist() == [[1]]
    np.testing.assert_allclose(weights, [[0.6]], rtol=1e-6, err_msg="renormalize=False must not divide by the kept sum")
    weights, _ = lab.fused_topk(np.log(np.array([[0.1, 0.6, 0.3]])), 1)
    np.testing.assert_allclose(weights, [[1.0]], rtol=1e-6, err_msg="top-1 renormalized is always weight 1")


def test_fused_topk_with_topk_equal_to_num_experts_orders_every_expert(lab):
    weights, ids = lab.fused_topk(np.array([[0.5, 2.0, -1.0, 1.0]]), 4)
    assert ids.tolist() == [[1, 3, 0, 2]], "all experts, best first"
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)


def test_naive_uses_every_slot_and_its_weight(lab):
    w1, w2 = make_experts(E=3)
    x = np.random.default_rng(8).standard_normal((1, 8))
    ids = np.array([[2, 0, 1]])
    weights = np.array([[0.5, 0.3, 0.2]])
    want = sum(weights[0, j] * expert_forward(x, w1[ids[0, j]], w2[ids[0, j]]) for j in range(3))
    np.testing.assert_allclose(lab.moe_forward_naive(x, w1, w2, weights, ids), want, rtol=1e-12,
                               err_msg="add weight * expert output for EVERY one of the k slots (TODO 2)")


def test_moe_permute_is_stable_on_a_long_routing(lab):
    rng = np.random.default_rng(9)
    ids = rng.integers(0, 4, size=(32, 2))
    x = np.arange(32.0)[:, None]
    permuted, offset, permuted_idx = lab.moe_permute(x, ids, 4)
    flat = ids.reshape(-1)
    want = [slot for e in range(4) for slot in range(64) if flat[slot] == e]
    assert permuted_idx.tolist() == want, "inside an expert's block, slots keep ascending order: use a stable sort (TODO 3)"
    assert permuted[:, 0].tolist() == [s // 2 for s in want], "row r is token permuted_idx[r] // k"
    assert offset.tolist() == [0] + np.cumsum(np.bincount(flat, minlength=4)).tolist()


def test_moe_permute_with_k_one_keeps_token_order_per_expert(lab):
    x = np.array([[10.0], [11.0], [12.0], [13.0]])
    permuted, offset, permuted_idx = lab.moe_permute(x, np.array([[1], [0], [1], [0]]), 3)
    assert permuted_idx.tolist() == [1, 3, 0, 2] and offset.tolist() == [0, 2, 4, 4]
    assert permuted[:, 0].tolist() == [11.0, 13.0, 10.0, 12.0]


def test_moe_unpermute_reads_each_rows_own_slot_weight(lab):
    rows = np.array([[1.0], [1.0], [1.0], [1.0]])
    permuted_idx = np.array([3, 0, 2, 1])
    weights = np.array([[0.1, 0.2], [0.3, 0.4]])  # slots 0..3 = 0.1, 0.2, 0.3, 0.4
    rows = rows * np.array([[1.0], [10.0], [100.0], [1000.0]])
    out = lab.moe_unpermute(rows, permuted_idx, weights)
    # row 0 is slot 3 (token 1, w 0.4), row 1 slot 0 (token 0, 0.1), row 2 slot 2 (token 1, 0.3), row 3 slot 1 (token 0, 0.2)
    np.testing.assert_allclose(out, [[10 * 0.1 + 1000 * 0.2], [1 * 0.4 + 100 * 0.3]],
                               err_msg="the weight of row r is the weight of slot permuted_idx[r] (TODO 4)")


# ---------------------------------------------------------------- GPU: against real vLLM


@pytest.mark.gpu
def test_fused_topk_matches_vllm_fused_topk(lab, gpu_device):
    import torch
    from vllm.model_executor.layers.fused_moe import fused_topk

    rng = np.random.default_rng(6)
    logits = rng.standard_normal((256, 8)).astype(np.float32)
    weights, ids = lab.fused_topk(logits, 2)
    g = torch.from_numpy(logits).to(gpu_device)
    v_weights, v_ids, _ = fused_topk(torch.empty(256, 16, device=gpu_device), g, 2, True)
    np.testing.assert_array_equal(v_ids.cpu().numpy(), ids)
    np.testing.assert_allclose(v_weights.cpu().numpy(), weights, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_grouped_forward_matches_vllm_fused_experts(lab, gpu_device, figures):
    """Lab-01's grouped forward (float64 on the CPU) against vLLM's Triton kernels (fp16)."""
    import torch
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.model_executor.layers.fused_moe import fused_experts

    T, H, I, E, k = 64, 256, 512, 8, 2
    rng = np.random.default_rng(7)
    # Round every input to fp16 first so both sides see identical numbers.
    x = (rng.standard_normal((T, H)) / 2).astype(np.float16)
    w1 = (rng.standard_normal((E, 2 * I, H)) / np.sqrt(H)).astype(np.float16)
    w2 = (rng.standard_normal((E, H, I)) / np.sqrt(I)).astype(np.float16)
    weights, ids = lab.fused_topk(rng.standard_normal((T, E)), k)
    ref = lab.moe_forward_grouped(x.astype(np.float64), w1.astype(np.float64), w2.astype(np.float64),
                                  weights.astype(np.float64), ids)
    dev = gpu_device
    with set_current_vllm_config(VllmConfig()):
        out = fused_experts(torch.from_numpy(x).to(dev), torch.from_numpy(w1).to(dev), torch.from_numpy(w2).to(dev),
                            torch.from_numpy(weights).to(dev), torch.from_numpy(ids).to(dev))
    got = out.float().cpu().numpy()
    err = float(np.max(np.abs(got - ref)))
    figures("phase07.lab01.fused_experts_max_abs_err", round(err, 5))
    figures("phase07.lab01.output_max_abs", round(float(np.max(np.abs(ref))), 3))
    np.testing.assert_allclose(got, ref, rtol=2e-2, atol=2e-2)
