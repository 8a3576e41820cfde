"""Lab 07-01 spec: routing, the per-token oracle, permute/unpermute, and grouped == oracle."""
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


# ---------------------------------------------------------------- TODO 1: route


def test_route_picks_top2_and_softmaxes_the_selected_logits(lab):
    logits = np.array([[2.0, 1.0, 0.1, 3.0]])
    weights, ids = lab.route(logits, 2)
    assert ids.tolist() == [[3, 0]], "ids must be best first: expert 3 (logit 3.0), then expert 0 (2.0)"
    # softmax([3, 2]) = [e/(e+1), 1/(e+1)]
    np.testing.assert_allclose(weights, [[0.7310586, 0.2689414]], rtol=1e-6)


def test_route_renormalized_weights_sum_to_one(lab):
    logits = np.random.default_rng(1).standard_normal((64, 8))
    weights, _ = lab.route(logits, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6,
                               err_msg="renormalize=True: divide the k kept probabilities by their sum")


def test_route_without_renormalize_keeps_full_softmax_probabilities(lab):
    logits = np.array([[2.0, 1.0, 0.1, 3.0]])
    weights, ids = lab.route(logits, 2, renormalize=False)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(weights, [[p[3], p[0]]], rtol=1e-6,
                               err_msg="renormalize=False (Qwen2-MoE's norm_topk_prob=False) keeps softmax over all E")
    assert round(float(weights.sum()), 4) == 0.8778


def test_route_breaks_ties_toward_the_lower_expert_id(lab):
    _, ids = lab.route(np.array([[1.0, 4.0, 4.0, 4.0]]), 2)
    assert ids.tolist() == [[1, 2]], "use a stable sort so equal probabilities keep ascending expert ids"


def test_route_returns_vllm_dtypes(lab):
    weights, ids = lab.route(np.zeros((3, 4)), 2)
    assert weights.dtype == np.float32 and ids.dtype == np.int32


# ---------------------------------------------------------------- TODO 2: reference


def test_reference_is_the_weighted_sum_of_the_chosen_experts(lab):
    w1, w2 = make_experts()
    x = np.random.default_rng(2).standard_normal((2, 8))
    ids = np.array([[1, 3], [0, 1]])
    weights = np.array([[0.75, 0.25], [0.5, 0.5]])
    out = lab.moe_forward_reference(x, w1, w2, weights, ids)
    want0 = 0.75 * expert_forward(x[:1], w1[1], w2[1]) + 0.25 * expert_forward(x[:1], w1[3], w2[3])
    want1 = 0.5 * expert_forward(x[1:], w1[0], w2[0]) + 0.5 * expert_forward(x[1:], w1[1], w2[1])
    np.testing.assert_allclose(out, np.vstack([want0, want1]), rtol=1e-12)


# ---------------------------------------------------------------- TODO 3: permute

IDS = np.array([[2, 0], [1, 2], [2, 1]])  # 3 tokens, k=2, E=4 (expert 3 unused)


def test_permute_offsets_count_rows_per_expert(lab):
    x = np.arange(3.0)[:, None] * np.ones((1, 2))
    _, offset, _ = lab.permute(x, IDS, 4)
    assert offset.tolist() == [0, 1, 3, 6, 6], "offset[e+1] - offset[e] = rows of expert e; 6 = T*k in total"


def test_permute_groups_slots_by_expert_in_token_order(lab):
    x = np.arange(3.0)[:, None] * np.ones((1, 2))
    permuted, _, permuted_idx = lab.permute(x, IDS, 4)
    assert permuted_idx.tolist() == [1, 2, 5, 0, 3, 4], "flat slots t*k+j, sorted by expert, stable"
    assert permuted[:, 0].tolist() == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0], "row r holds token permuted_idx[r] // k"


# ---------------------------------------------------------------- TODO 4: unpermute


def test_unpermute_adds_every_row_of_a_token(lab):
    """The pitfall: token ids repeat k times; ``out[tokens] += rows`` keeps one of them."""
    rows = np.array([[1.0], [10.0], [100.0], [1000.0]])
    permuted_idx = np.array([0, 2, 1, 3])  # k=2: rows 0 and 2 belong to token 0, rows 1 and 3 to token 1
    weights = np.array([[0.5, 0.25], [1.0, 2.0]])
    out = lab.unpermute(rows, permuted_idx, weights)
    # token 0: 0.5 * 1 + 0.25 * 100 = 25.5; token 1: 1.0 * 10 + 2.0 * 1000 = 2010
    np.testing.assert_allclose(out, [[25.5], [2010.0]], err_msg=(
        "a token's k rows must all be added: use np.add.at(out, permuted_idx // k, weighted_rows); "
        "fancy-index += drops repeated indices"))


def test_permute_then_unpermute_round_trips_the_input(lab):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 8))
    weights, ids = lab.route(rng.standard_normal((10, 5)), 3)
    permuted, _, permuted_idx = lab.permute(x, ids, 5)
    np.testing.assert_allclose(lab.unpermute(permuted, permuted_idx, weights), x, rtol=1e-5, atol=1e-6,
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


def test_grouped_equals_reference_on_a_mixtral_shaped_layer(lab):
    rng = np.random.default_rng(5)
    w1, w2 = make_experts(E=8, H=16, I=12, seed=5)
    x = rng.standard_normal((32, 16))
    weights, ids = lab.route(rng.standard_normal((32, 8)), 2)
    ref = lab.moe_forward_reference(x, w1, w2, weights, ids)
    np.testing.assert_allclose(lab.moe_forward_grouped(x, w1, w2, weights, ids), ref, rtol=1e-6, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 16), E=st.integers(1, 6), k=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_grouped_equals_reference_for_any_routing(lab, T, E, k, seed):
    k = min(k, E)
    rng = np.random.default_rng(seed)
    w1, w2 = make_experts(E=E, seed=seed)
    x = rng.standard_normal((T, 8))
    weights, ids = lab.route(rng.standard_normal((T, E)), k)
    ref = lab.moe_forward_reference(x, w1, w2, weights, ids)
    np.testing.assert_allclose(lab.moe_forward_grouped(x, w1, w2, weights, ids), ref, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- GPU: against real vLLM


@pytest.mark.gpu
def test_route_matches_vllm_fused_topk(lab, gpu_device):
    import torch
    from vllm.model_executor.layers.fused_moe import fused_topk

    rng = np.random.default_rng(6)
    logits = rng.standard_normal((256, 8)).astype(np.float32)
    weights, ids = lab.route(logits, 2)
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
    weights, ids = lab.route(rng.standard_normal((T, E)), k)
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
