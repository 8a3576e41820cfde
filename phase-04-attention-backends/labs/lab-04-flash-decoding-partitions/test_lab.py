"""Spec for lab 04-04: split-KV decode with a mergeable (max, denominator, acc) state."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.attention import AttentionState, dense_causal_attention, write_kv

TOL = 1e-12


def decode_request(rng, seq_len, block_size=4, num_heads=4, num_kv_heads=2, head_dim=8):
    """(q [1,H,D], cache, table, k, v) with positions 0..seq_len-1 scattered over blocks."""
    num_logical = -(-seq_len // block_size)
    num_blocks = num_logical + 2
    table = rng.permutation(num_blocks)[:num_logical]
    cache = rng.standard_normal((2, num_blocks, block_size, num_kv_heads, head_dim))
    k = rng.standard_normal((seq_len, num_kv_heads, head_dim))
    v = rng.standard_normal((seq_len, num_kv_heads, head_dim))
    pos = np.arange(seq_len)
    write_kv(cache, table[pos // block_size] * block_size + pos % block_size, k, v)
    return rng.standard_normal((1, num_heads, head_dim)), cache, table.tolist(), k, v


def dense(q, k, v):
    return dense_causal_attention(q, k, v, start_pos=k.shape[0] - 1)


def out_of(state):
    return state.acc / state.l[..., None]


def test_one_partition_is_just_attention(lab):
    rng = np.random.default_rng(0)
    q, _, _, k, v = decode_request(rng, 20)
    assert np.abs(out_of(lab.attend_partition(q, k, v)) - dense(q, k, v)).max() < TOL


def test_partial_state_is_not_normalised(lab):
    q = np.zeros((1, 1, 2))
    k = np.zeros((2, 1, 2))  # both scores 0
    v = np.array([[[2.0, 0.0]], [[4.0, 0.0]]])
    s = lab.attend_partition(q, k, v)
    assert s.m[0, 0] == 0.0 and s.l[0, 0] == 2.0, "l = exp(0) + exp(0)"
    assert s.acc[0, 0].tolist() == [6.0, 0.0], (
        "acc = 1*2 + 1*4 = 6, not the average 3: divide only after the last merge"
    )


def test_empty_partition_is_the_identity(lab):
    rng = np.random.default_rng(1)
    q, _, _, k, v = decode_request(rng, 9)
    empty = lab.attend_partition(q, k[:0], v[:0])
    assert np.all(np.isneginf(empty.m)) and np.all(empty.l == 0) and np.all(empty.acc == 0)
    x = lab.attend_partition(q, k, v)
    for merged in (lab.merge_states(empty, x), lab.merge_states(x, empty)):
        assert np.array_equal(merged.m, x.m) and np.array_equal(merged.l, x.l) and np.array_equal(merged.acc, x.acc)
    with np.errstate(invalid="ignore"):
        both = lab.merge_states(empty, empty)
    assert not np.isnan(both.l).any() and not np.isnan(both.acc).any(), "exp(-inf - -inf) is nan: guard it"


@pytest.mark.parametrize("num_partitions", [1, 2, 3, 7, 32, 100])
def test_any_partition_count_matches_dense(lab, num_partitions):
    rng = np.random.default_rng(num_partitions)
    q, cache, table, k, v = decode_request(rng, 50)
    got = lab.split_kv_decode(q, cache, table, 50, num_partitions)
    assert got.shape == (1, 4, 8)
    assert np.abs(got - dense(q, k, v)).max() < TOL, (
        "100 partitions of 50 keys leaves 50 empty ones: they must merge as (-inf, 0, 0)"
    )


def test_merge_order_does_not_matter(lab):
    rng = np.random.default_rng(2)
    q, cache, table, k, v = decode_request(rng, 37)
    want = dense(q, k, v)
    for order in ([0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [3, 0, 5, 1, 4, 2]):
        got = lab.split_kv_decode(q, cache, table, 37, 6, order=order)
        assert np.abs(got - want).max() < TOL, f"merge order {order}: thread blocks finish in any order"


def merge_tree(lab, states, draw):
    """Merge ``states`` (kept in key order) with a random binary tree."""
    if len(states) == 1:
        return states[0]
    cut = draw(st.integers(1, len(states) - 1))
    left, right = merge_tree(lab, states[:cut], draw), merge_tree(lab, states[cut:], draw)
    return lab.merge_states(left, right) if draw(st.booleans()) else lab.merge_states(right, left)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.data(), seq_len=st.integers(1, 48), seed=st.integers(0, 2**32 - 1))
def test_any_tree_shape_matches_dense(lab, data, seq_len, seed):
    rng = np.random.default_rng(seed)
    q, _, _, k, v = decode_request(rng, seq_len)
    cuts = sorted(data.draw(st.lists(st.integers(0, seq_len), max_size=8)))
    bounds = [0, *cuts, seq_len]
    states = [lab.attend_partition(q, k[a:b], v[a:b]) for a, b in zip(bounds, bounds[1:])]
    total = merge_tree(lab, states, data.draw)
    assert np.abs(out_of(total) - dense(q, k, v)).max() < TOL


def test_extreme_scores_do_not_overflow(lab):
    rng = np.random.default_rng(3)
    q, cache, table, k, v = decode_request(rng, 40)
    k[31] = q[0, ::2] * 300.0  # key 31 scores several hundred against heads 0 and 2
    top = (q[0, 0] @ k[31, 0]) / np.sqrt(8)
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(top)), "the stress must be real: exp(score) overflows float64"
    pos = np.arange(40)
    write_kv(cache, np.asarray(table)[pos // 4] * 4 + pos % 4, k, v)
    got = lab.split_kv_decode(q, cache, table, 40, 5)
    assert np.isfinite(got).all(), "each partition subtracts its own max; the merge rescales by exp(m_i - m) <= 1"
    assert np.abs(got - dense(q, k, v)).max() < TOL


def test_output_lse_form_merges_to_the_same_answer(lab):
    rng = np.random.default_rng(4)
    q, _, _, k, v = decode_request(rng, 30)
    parts = [lab.to_output_lse(lab.attend_partition(q, k[a:b], v[a:b])) for a, b in ((0, 7), (7, 7), (7, 19), (19, 30))]
    out, lse = parts[0]
    for o, s in parts[1:]:
        out, lse = lab.merge_output_lse(out, lse, o, s)
    assert np.abs(out - dense(q, k, v)).max() < TOL
    scores = np.einsum("mhd,nhd->mhn", q, np.repeat(k, 2, axis=1)) / np.sqrt(8)
    want_lse = np.log(np.exp(scores).sum(-1))
    assert np.abs(lse - want_lse).max() < TOL, "lse of the union = log(sum of exp(score)) over every key"
    assert np.isneginf(parts[1][1]).all(), "an empty partition has lse = -inf"


def test_triton_segment_layout(lab):
    long = lab.segment_layout(1000, 16, 16)
    assert len(long) == 16 and long[0] == (0, 64) and long[-1] == (960, 1000), (
        "cdiv(1000, 16*16) = 4 tiles of 16 = 64 tokens per segment; the last holds 40"
    )
    short = lab.segment_layout(100, 16, 16)
    assert [s for s in short if s[1] > s[0]][-1] == (96, 100)
    assert sum(s[1] > s[0] for s in short) == 7, "100 tokens fill 7 segments of 16; the other 9 return early"
    assert short[7:] == [(100, 100)] * 9


def test_triton_segments_merge_to_dense(lab):
    rng = np.random.default_rng(5)
    q, _, _, k, v = decode_request(rng, 100)
    total = None
    for a, b in lab.segment_layout(100, 16, 16):
        s = lab.attend_partition(q, k[a:b], v[a:b])
        total = s if total is None else lab.merge_states(total, s)
    assert np.abs(out_of(total) - dense(q, k, v)).max() < TOL


def test_when_the_triton_backend_splits(lab):
    assert lab.uses_split_kv(1, 16, 8) is True, "128 // 8 KV heads = 16 sequences or fewer: split-KV"
    assert lab.uses_split_kv(1, 17, 8) is False, "enough (sequence, head) programs already: no split"
    assert lab.uses_split_kv(1, 128, 1) is True, "one KV head (MQA): threshold 128"
    assert lab.uses_split_kv(5, 1, 8) is False, "any prefill in the batch: 2D kernel"
    assert lab.uses_split_kv(1, 1, 8, batch_invariant=True) is False, "batch invariance pins the reduction order"


@pytest.mark.parametrize("scale", [0.05, 1.0])
def test_an_explicit_scale_replaces_the_default(lab, scale):
    rng = np.random.default_rng(6)
    q, cache, table, k, v = decode_request(rng, 21)
    got = lab.split_kv_decode(q, cache, table, 21, 3, scale=scale)
    want = dense_causal_attention(q, k, v, start_pos=20, scale=scale)
    assert np.abs(got - want).max() < TOL, f"README task 1: scale={scale} was passed; D ** -0.5 is only the default"


def test_two_empty_partials_merge_to_an_empty_partial(lab):
    zero, none = np.zeros((1, 2, 3)), np.full((1, 2), -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        out, lse = lab.merge_output_lse(zero, none, zero, none)
    assert not np.isnan(out).any() and np.all(out == 0), "README task 5: two empty partials merge to output 0, not nan"
    assert np.all(np.isneginf(lse)), "README task 5: ... and lse -inf"


def test_partials_are_weighted_by_their_lse_not_averaged(lab):
    out_a, out_b = np.full((1, 1, 1), 2.0), np.full((1, 1, 1), 8.0)
    out, lse = lab.merge_output_lse(out_a, np.array([[np.log(3.0)]]), out_b, np.array([[np.log(1.0)]]))
    assert out[0, 0, 0] == pytest.approx(3.5, abs=1e-12), (
        "README task 5: weights 3 and 1 (exp of each lse): (3*2 + 1*8) / 4 = 3.5, not the plain mean 5"
    )
    assert lse[0, 0] == pytest.approx(np.log(4.0), abs=1e-12), "README task 5: lse of the union is log(3 + 1)"


def test_segment_layout_for_other_segment_counts_and_tiles(lab):
    assert lab.segment_layout(33, 4, 8) == [(0, 16), (16, 32), (32, 33), (33, 33)], (
        "README task 6: cdiv(33, 4*8) = 2 tiles of 8 = 16 tokens per segment; segment 2 holds 1, segment 3 none"
    )
    assert lab.segment_layout(32, 4, 8) == [(0, 8), (8, 16), (16, 24), (24, 32)], (
        "README task 6: 32 tokens fill exactly 4 tiles: one tile per segment"
    )
    assert lab.segment_layout(5, 3, 16) == [(0, 5), (5, 5), (5, 5)], (
        "README task 6: one short tile: segment 0 holds every token, the others are empty at (seq_len, seq_len)"
    )


@pytest.mark.parametrize("num_kv_heads, last_split", [(3, 42), (5, 25), (16, 8)])
def test_split_threshold_floors_for_any_head_count(lab, num_kv_heads, last_split):
    assert lab.uses_split_kv(1, last_split, num_kv_heads) is True, (
        f"README task 7: 128 // {num_kv_heads} = {last_split} sequences still split"
    )
    assert lab.uses_split_kv(1, last_split + 1, num_kv_heads) is False, (
        f"README task 7: {last_split + 1} sequences are over the threshold"
    )
    assert lab.uses_split_kv(2, 1, num_kv_heads) is False, "README task 7: a query of 2 tokens is not a decode"


def _partials_for_gpu(lab, rng, num_tokens=3, num_heads=8, num_kv_heads=2, head_dim=64, seq_len=300, cuts=(0, 45, 160, 300)):
    q = rng.standard_normal((num_tokens, num_heads, head_dim))
    k = rng.standard_normal((seq_len, num_kv_heads, head_dim))
    v = rng.standard_normal((seq_len, num_kv_heads, head_dim))
    parts = [lab.to_output_lse(lab.attend_partition(q, k[a:b], v[a:b])) for a, b in zip(cuts, cuts[1:])]
    return q, k, v, parts


@pytest.mark.gpu
def test_gpu_split_kv_matches_torch_sdpa(lab, gpu_device, figures):
    """The lab's float64 split-KV merge against PyTorch's fused attention on the GPU."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(6)
    q, k, v, parts = _partials_for_gpu(lab, rng)
    out, _ = parts[0]
    lse = parts[0][1]
    for o, s in parts[1:]:
        out, lse = lab.merge_output_lse(out, lse, o, s)
    group = q.shape[1] // k.shape[1]
    tq = torch.tensor(q, dtype=torch.float32, device=gpu_device).transpose(0, 1)  # [H, M, D]
    tk = torch.tensor(np.repeat(k, group, axis=1), dtype=torch.float32, device=gpu_device).transpose(0, 1)
    tv = torch.tensor(np.repeat(v, group, axis=1), dtype=torch.float32, device=gpu_device).transpose(0, 1)
    ref = F.scaled_dot_product_attention(tq, tk, tv).transpose(0, 1).cpu().double().numpy()
    err = np.abs(out - ref).max()
    figures("p04_lab04_merge_vs_sdpa_max_abs_err", float(err))
    assert err < 1e-5


@pytest.mark.gpu
def test_gpu_vllm_merge_attn_states_matches_lab(lab, gpu_device, figures):
    """vLLM's own merge kernel (the one cascade attention calls) folds the same partials."""
    import torch
    from vllm.v1.attention.ops.merge_attn_states import merge_attn_states

    rng = np.random.default_rng(7)
    q, k, v, parts = _partials_for_gpu(lab, rng)
    want, want_lse = parts[0]
    for o, s in parts[1:]:
        want, want_lse = lab.merge_output_lse(want, want_lse, o, s)

    def t(x):
        return torch.tensor(x, dtype=torch.float32, device=gpu_device).contiguous()

    out, lse = t(parts[0][0]), t(parts[0][1].T)  # vLLM's lse layout is [heads, tokens]
    for o, s in parts[1:]:
        merged, merged_lse = torch.empty_like(out), torch.empty_like(lse)
        merge_attn_states(merged, out, lse, t(o), t(s.T), output_lse=merged_lse)
        out, lse = merged, merged_lse
    err = np.abs(out.cpu().double().numpy() - want).max()
    lse_err = np.abs(lse.cpu().double().numpy().T - want_lse).max()
    figures("p04_lab04_vllm_merge_max_abs_err", float(err))
    figures("p04_lab04_vllm_merge_lse_max_abs_err", float(lse_err))
    assert err < 1e-5 and lse_err < 1e-4
