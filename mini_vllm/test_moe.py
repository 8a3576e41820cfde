"""Spec for mini_vllm.moe: routing, the three equal MoE forwards, and the align step."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.moe import (
    FusedMoE,
    MixtralMoE,
    expert_forward,
    fused_experts,
    fused_topk,
    moe_align_block_size,
    moe_forward_grouped,
    moe_forward_naive,
    moe_permute,
    moe_sum,
    moe_unpermute,
    silu_and_mul,
    softmax,
)


def make_moe(T=12, H=8, I=6, E=4, k=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, H))
    w1 = rng.standard_normal((E, 2 * I, H)) / np.sqrt(H)
    w2 = rng.standard_normal((E, H, I)) / np.sqrt(I)
    logits = rng.standard_normal((T, E))
    weights, ids = fused_topk(logits, k, renormalize=True)
    return x, w1, w2, weights.astype(np.float64), ids


def test_fused_topk_renormalized_weights_sum_to_one():
    logits = np.random.default_rng(1).standard_normal((50, 8))
    weights, _ = fused_topk(logits, 2, renormalize=True)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)


def test_fused_topk_equals_softmax_over_the_selected_logits():
    logits = np.random.default_rng(2).standard_normal((40, 8))
    weights, ids = fused_topk(logits, 2, renormalize=True)
    selected = np.take_along_axis(logits, ids.astype(np.int64), axis=1)
    np.testing.assert_allclose(weights, softmax(selected), rtol=1e-5)


def test_fused_topk_without_renormalize_returns_full_softmax_probabilities():
    logits = np.random.default_rng(3).standard_normal((10, 8))
    weights, ids = fused_topk(logits, 2, renormalize=False)
    probs = softmax(logits.astype(np.float32))
    np.testing.assert_allclose(weights, np.take_along_axis(probs, ids.astype(np.int64), 1), rtol=1e-6)
    assert np.all(weights.sum(axis=1) < 1.0)


def test_fused_topk_orders_best_first_and_breaks_ties_toward_lower_ids():
    logits = np.array([[0.0, 3.0, 1.0, 3.0], [5.0, 5.0, 5.0, 5.0]])
    weights, ids = fused_topk(logits, 2)
    assert ids.tolist() == [[1, 3], [0, 1]]
    assert ids.dtype == np.int32 and weights.dtype == np.float32


def test_fused_topk_rejects_bad_topk():
    with pytest.raises(ValueError):
        fused_topk(np.zeros((2, 4)), 5)


def test_silu_and_mul_gates_the_second_half_with_silu_of_the_first():
    x = np.array([[0.0, 2.0, 3.0, 5.0]])
    np.testing.assert_allclose(silu_and_mul(x), [[0.0, 2.0 / (1 + np.exp(-2.0)) * 5.0]])


@settings(max_examples=30, deadline=None)
@given(
    T=st.integers(1, 20), E=st.integers(1, 6), k=st.integers(1, 3),
    block=st.sampled_from([1, 2, 4, 16]), seed=st.integers(0, 10_000),
)
def test_all_three_forwards_agree(T, E, k, block, seed):
    k = min(k, E)
    x, w1, w2, weights, ids = make_moe(T=T, E=E, k=k, seed=seed)
    ref = moe_forward_naive(x, w1, w2, weights, ids)
    np.testing.assert_allclose(moe_forward_grouped(x, w1, w2, weights, ids), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused_experts(x, w1, w2, weights, ids, block_size=block), ref, rtol=1e-10, atol=1e-12)


def test_moe_permute_gives_each_expert_exactly_its_slots():
    x, _, _, _, ids = make_moe(T=10, E=4, k=2, seed=4)
    permuted, offset, permuted_idx = moe_permute(x, ids, 4)
    assert offset.tolist() == [0, *np.cumsum(np.bincount(ids.ravel(), minlength=4)).tolist()]
    for e in range(4):
        slots = permuted_idx[offset[e] : offset[e + 1]]
        assert np.all(ids.ravel()[slots] == e)
        assert sorted(slots.tolist()) == np.flatnonzero(ids.ravel() == e).tolist()
    np.testing.assert_array_equal(permuted, x[permuted_idx // 2])


def test_moe_unpermute_adds_every_slot_of_a_token():
    rows = np.array([[1.0], [10.0], [100.0], [1000.0]])
    permuted_idx = np.array([0, 2, 1, 3])  # k=2: slots 0,1 -> token 0; 2,3 -> token 1
    weights = np.array([[0.5, 0.25], [1.0, 2.0]])
    out = moe_unpermute(rows, permuted_idx, weights)
    # token 0: 0.5*rows[0] (slot 0) + 0.25*rows[2] (slot 1); token 1: 1.0*rows[1] + 2.0*rows[3]
    np.testing.assert_allclose(out, [[0.5 + 25.0], [10.0 + 2000.0]])


def test_permute_then_unpermute_is_identity_when_weights_sum_to_one():
    x, _, _, weights, ids = make_moe(T=9, E=5, k=3, seed=5)
    permuted, _, permuted_idx = moe_permute(x, ids, 5)
    np.testing.assert_allclose(moe_unpermute(permuted, permuted_idx, weights), x, rtol=1e-6)


def test_moe_align_block_size_matches_the_upstream_docstring_example():
    # The upstream docstring lists ids 1..4 with num_experts=4; shifted to 0-based here.
    ids = np.array([[1, 2, 3], [0, 1, 3], [0, 2, 3], [0, 1, 2]])
    sorted_ids, expert_ids, post = moe_align_block_size(ids, block_size=4, num_experts=4)
    assert sorted_ids.tolist() == [3, 6, 9, 12, 0, 4, 10, 12, 1, 7, 11, 12, 2, 5, 8, 12]
    assert expert_ids.tolist() == [0, 1, 2, 3]
    assert post == 16


def test_moe_align_block_size_pads_each_expert_to_whole_blocks():
    ids = np.array([[0, 2]] * 5 + [[2, 1]])  # counts: e0=5, e1=1, e2=6
    sorted_ids, expert_ids, post = moe_align_block_size(ids, block_size=4, num_experts=4)
    assert post == 8 + 4 + 8
    assert expert_ids.tolist() == [0, 0, 1, 2, 2]
    assert int(np.sum(sorted_ids == ids.size)) == post - ids.size


def test_moe_sum_reduces_over_the_slot_axis():
    x = np.arange(12.0).reshape(2, 3, 2)
    np.testing.assert_allclose(moe_sum(x), [[6.0, 9.0], [24.0, 27.0]])


def test_mixtral_moe_equals_the_dense_masked_formula():
    rng = np.random.default_rng(6)
    T, H, I, E = 7, 8, 5, 4
    x = rng.standard_normal((T, H))
    gate = rng.standard_normal((E, H))
    w1 = rng.standard_normal((E, 2 * I, H)) / 3
    w2 = rng.standard_normal((E, H, I)) / 3
    out = MixtralMoE(gate, w1, w2, top_k=2).forward(x)
    logits = x @ gate.T
    expected = np.zeros((T, H))
    for t in range(T):
        top2 = np.argsort(-logits[t], kind="stable")[:2]
        w = softmax(logits[t, top2])
        for e, we in zip(top2, w):
            expected[t] += we * expert_forward(x[t : t + 1], w1[e], w2[e])[0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_fused_moe_forward_routes_with_its_top_k():
    x, w1, w2, _, _ = make_moe(T=6, E=4, k=1, seed=7)
    logits = np.random.default_rng(8).standard_normal((6, 4))
    layer = FusedMoE(w1, w2, top_k=1)
    ids = np.argmax(logits, axis=1)
    expected = np.stack([expert_forward(x[t : t + 1], w1[e], w2[e])[0] for t, e in enumerate(ids)])
    np.testing.assert_allclose(layer.forward(x, logits), expected, rtol=1e-6, atol=1e-9)


def test_moe_align_block_size_on_lab01_ids_with_blocks_of_two():
    ids = np.array([[2, 0], [1, 2], [2, 1]])
    sorted_ids, expert_ids, post = moe_align_block_size(ids, block_size=2, num_experts=4)
    assert sorted_ids.tolist() == [1, 6, 2, 5, 0, 3, 4, 6]
    assert expert_ids.tolist() == [0, 1, 2, 2]
    assert post == 8


def test_padding_cost_for_eight_tokens_top2_of_eight_experts():
    ids = np.array([[t % 8, (t + 4) % 8] for t in range(8)])  # 16 slots, every expert gets 2
    _, expert_ids, post = moe_align_block_size(ids, block_size=16, num_experts=8)
    assert len(expert_ids) == 8 and post == 128, "8 blocks of 16 rows for 16 real slots"


def test_fancy_index_add_drops_repeated_indices_where_add_at_does_not():
    """The bug moe_unpermute avoids: with repeated indices, ``+=`` keeps the last write."""
    token_of_row = np.array([0, 1, 0, 1])
    weighted_rows = np.array([0.5, 10.0, 25.0, 2000.0])
    buggy = np.zeros(2)
    buggy[token_of_row] += weighted_rows
    right = np.zeros(2)
    np.add.at(right, token_of_row, weighted_rows)
    assert buggy.tolist() == [25.0, 2000.0]
    assert right.tolist() == [25.5, 2010.0]
