"""Spec for lab 04-01: online softmax over a paged KV cache equals dense attention."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.attention import AttentionState, dense_causal_attention, paged_attention, write_kv

TOL = 1e-12


def build_paged_request(rng, seq_len, block_size, block_table, num_blocks, num_heads=4, num_kv_heads=2, head_dim=8):
    """A cache with random garbage everywhere, then the request's K/V written through
    its block table; returns (q [1,H,D], cache, k, v) with k, v the logical [T,Hkv,D]."""
    cache = rng.standard_normal((2, num_blocks, block_size, num_kv_heads, head_dim)) * 3.0
    k = rng.standard_normal((seq_len, num_kv_heads, head_dim))
    v = rng.standard_normal((seq_len, num_kv_heads, head_dim))
    pos = np.arange(seq_len)
    slots = np.asarray(block_table)[pos // block_size] * block_size + pos % block_size
    write_kv(cache, slots, k, v)
    q = rng.standard_normal((1, num_heads, head_dim))
    return q, cache, k, v


def step(lab, state, scores, values):
    return lab.online_softmax_step(
        state, np.asarray(scores, dtype=float)[None], np.asarray(values, dtype=float)[None, :, None]
    )


def test_two_block_hand_trace_rescales_history(lab):
    empty = AttentionState(np.array([-np.inf]), np.zeros(1), np.zeros((1, 1)))
    s1 = step(lab, empty, [1.0, 2.0], [10.0, 20.0])
    assert s1.m[0] == 2.0, "m after block 1 is the block's own max"
    assert s1.l[0] == pytest.approx(1.3679, abs=5e-5), "l = exp(1-2) + exp(2-2)"
    assert s1.acc[0, 0] == pytest.approx(23.6788, abs=5e-5), "acc = 10*exp(-1) + 20*exp(0), NOT divided by l"
    s2 = step(lab, s1, [3.0, 0.0], [30.0, 40.0])
    assert s2.m[0] == 3.0
    alpha = (s2.l[0] - (1.0 + np.exp(-3.0))) / s1.l[0]
    assert alpha == pytest.approx(0.3679, abs=5e-5), "block 2 raised the max by 1: history shrinks by exp(-1)"
    assert s2.l[0] == pytest.approx(1.5530, abs=5e-5), "old l must be rescaled by alpha = exp(2 - 3) before adding"
    assert s2.acc[0, 0] == pytest.approx(40.7024, abs=5e-5), "old acc must be rescaled by the same alpha"
    out = s2.acc[0, 0] / s2.l[0]
    assert out == pytest.approx(26.2089, abs=5e-5)
    e = np.exp([1.0, 2.0, 3.0, 0.0])
    assert abs(out - (e @ [10.0, 20.0, 30.0, 40.0]) / e.sum()) < TOL, "the streamed result is exact softmax"


def test_fully_masked_first_tile_leaves_state_empty_not_nan(lab):
    empty = AttentionState(np.full(2, -np.inf), np.zeros(2), np.zeros((2, 3)))
    masked = np.full((2, 4), -np.inf)
    with np.errstate(invalid="ignore"):
        s = lab.online_softmax_step(empty, masked, np.ones((2, 4, 3)))
    assert not np.isnan(s.l).any() and not np.isnan(s.acc).any(), (
        "m_old = m_new = -inf gives exp(-inf - -inf) = nan: exponentiate against 0 when the max is -inf"
    )
    assert np.all(np.isneginf(s.m)) and np.all(s.l == 0) and np.all(s.acc == 0)
    rng = np.random.default_rng(1)
    scores, values = rng.standard_normal((2, 5)), rng.standard_normal((2, 5, 3))
    s = lab.online_softmax_step(s, scores, values)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    want = np.einsum("ht,htd->hd", p / p.sum(-1, keepdims=True), values)
    assert np.abs(s.acc / s.l[:, None] - want).max() < TOL


def test_gather_block_reads_the_physical_block_named_by_the_table(lab):
    cache = np.arange(2 * 5 * 4 * 1 * 1, dtype=float).reshape(2, 5, 4, 1, 1)
    k, v = lab.gather_block(cache, [3, 1, 4], 2, 3)
    assert k.shape == (3, 1, 1) and v.shape == (3, 1, 1), "only num_valid rows: the rest of the block is not this request's"
    assert k[:, 0, 0].tolist() == [16.0, 17.0, 18.0], "logical block 2 -> physical block 4 -> K rows 16, 17, 18"
    assert v[:, 0, 0].tolist() == [36.0, 37.0, 38.0], "V lives at index 1 of the layer cache"


def test_matches_dense_block_aligned(lab):
    rng = np.random.default_rng(0)
    table = [3, 1, 7, 0]
    q, cache, k, v = build_paged_request(rng, 16, 4, table, num_blocks=8)
    got = lab.paged_decode_attention(q, cache, table, 16)
    want = paged_attention(q, cache, table, 16, start_pos=15)
    assert got.shape == (1, 4, 8)
    assert np.abs(got - want).max() < TOL


def test_matches_dense_partial_last_block(lab):
    rng = np.random.default_rng(2)
    table = [5, 2, 6, 1]
    q, cache, k, v = build_paged_request(rng, 13, 4, table, num_blocks=8)
    cache[:, 1, 1:] = np.nan  # rows 1..3 of the last block (physical 1) are not this request's
    with np.errstate(invalid="ignore"):
        got = lab.paged_decode_attention(q, cache, table, 13)
    want = dense_causal_attention(q, k, v, start_pos=12)
    assert np.isfinite(got).all() and np.abs(got - want).max() < TOL, (
        "README task 3: 13 tokens in blocks of 4 leave 1 valid row in the last block; its NaN padding must never be read (masking a score does not help: 0 * NaN is NaN)"
    )


def test_paging_invariance(lab):
    rng = np.random.default_rng(3)
    q, cache_a, k, v = build_paged_request(rng, 11, 4, [0, 1, 2], num_blocks=8)
    cache_b = rng.standard_normal(cache_a.shape)
    pos = np.arange(11)
    write_kv(cache_b, np.array([7, 3, 5])[pos // 4] * 4 + pos % 4, k, v)
    a = lab.paged_decode_attention(q, cache_a, [0, 1, 2], 11)
    b = lab.paged_decode_attention(q, cache_b, [7, 3, 5], 11)
    assert np.array_equal(a, b), "the block table is the only link between logical and physical blocks"


def test_huge_logits_do_not_overflow(lab):
    rng = np.random.default_rng(4)
    table = [2, 0, 1]
    q, cache, k, v = build_paged_request(rng, 10, 4, table, num_blocks=3, num_heads=2, num_kv_heads=2, head_dim=4)
    q *= 400.0  # scores of several hundred: exp() of them overflows float64 past ~709
    got = lab.paged_decode_attention(q, cache, table, 10)
    want = dense_causal_attention(q, k, v, start_pos=9)
    assert np.isfinite(got).all(), "exponentiate s - m, never s itself"
    assert np.abs(got - want).max() < TOL


def test_sliding_window_fully_masks_early_blocks(lab):
    rng = np.random.default_rng(5)
    table = [4, 0, 3, 1]
    q, cache, k, v = build_paged_request(rng, 13, 4, table, num_blocks=5)
    with np.errstate(invalid="ignore"):
        got = lab.paged_decode_attention(q, cache, table, 13, sliding_window=3)
    want = dense_causal_attention(q, k[10:], v[10:], start_pos=2)
    assert not np.isnan(got).any(), "blocks 0 and 1 are entirely outside the window: their tiles are all -inf"
    assert np.abs(got - want).max() < TOL, "window 3 at position 12 sees positions 10, 11, 12 only"


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    seq_len=st.integers(1, 40),
    block_size=st.sampled_from([1, 2, 4, 8, 16]),
    heads=st.sampled_from([(1, 1), (4, 4), (4, 2), (6, 1)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_length_and_placement_matches_dense(lab, seq_len, block_size, heads, seed):
    rng = np.random.default_rng(seed)
    num_logical = -(-seq_len // block_size)
    num_blocks = num_logical + 3
    table = rng.permutation(num_blocks)[:num_logical].tolist()
    q, cache, k, v = build_paged_request(rng, seq_len, block_size, table, num_blocks, heads[0], heads[1], 4)
    got = lab.paged_decode_attention(q, cache, table, seq_len)
    want = dense_causal_attention(q, k, v, start_pos=seq_len - 1)
    assert np.abs(got - want).max() < TOL


def test_a_max_that_falls_between_tiles_keeps_the_running_max(lab):
    empty = AttentionState(np.array([-np.inf]), np.zeros(1), np.zeros((1, 1)))
    s1 = step(lab, empty, [1000.0, 999.0], [1.0, 2.0])
    with np.errstate(over="ignore", invalid="ignore"):
        s2 = step(lab, s1, [0.0, -5.0], [3.0, 4.0])
    assert s2.m[0] == 1000.0, (
        "README task 1: m is the max over every score seen so far, not this tile's max; "
        "a lower tile must not pull it down"
    )
    assert np.isfinite(s2.l).all() and np.isfinite(s2.acc).all(), "rescaling the history by exp(1000 - 0) overflows"
    e = np.exp(np.array([1000.0, 999.0, 0.0, -5.0]) - 1000.0)
    assert abs(s2.acc[0, 0] / s2.l[0] - (e @ [1.0, 2.0, 3.0, 4.0]) / e.sum()) < TOL


def test_a_masked_tile_after_real_keys_leaves_the_state_unchanged(lab):
    rng = np.random.default_rng(6)
    empty = AttentionState(np.full(3, -np.inf), np.zeros(3), np.zeros((3, 2)))
    s1 = lab.online_softmax_step(empty, rng.standard_normal((3, 4)) * 5, rng.standard_normal((3, 4, 2)))
    with np.errstate(invalid="ignore", over="ignore"):
        s2 = lab.online_softmax_step(s1, np.full((3, 2), -np.inf), rng.standard_normal((3, 2, 2)))
    assert np.array_equal(s2.m, s1.m), "README task 1: a tile of -inf scores adds no key, so the max stays"
    assert np.allclose(s2.l, s1.l, rtol=0, atol=1e-15) and np.allclose(s2.acc, s1.acc, rtol=0, atol=1e-15), (
        "README task 1: a fully masked tile must leave l and acc as they were"
    )


@pytest.mark.parametrize("scale", [0.05, 1.0, 2.5])
def test_an_explicit_scale_replaces_the_default(lab, scale):
    rng = np.random.default_rng(7)
    table = [1, 3, 0]
    q, cache, k, v = build_paged_request(rng, 10, 4, table, num_blocks=4)
    got = lab.paged_decode_attention(q, cache, table, 10, scale=scale)
    want = dense_causal_attention(q, k, v, start_pos=9, scale=scale)
    assert np.abs(got - want).max() < TOL, f"README task 3: scale={scale} was passed; D ** -0.5 is only the default"


@pytest.mark.parametrize("window", [1, 4, 5, 9, 10, 11, 50])
def test_window_edges_see_exactly_the_last_w_positions(lab, window):
    rng = np.random.default_rng(8)
    table = [2, 0, 3]
    q, cache, k, v = build_paged_request(rng, 10, 4, table, num_blocks=4)
    with np.errstate(invalid="ignore"):
        got = lab.paged_decode_attention(q, cache, table, 10, sliding_window=window)
    first = max(0, 10 - window)
    want = dense_causal_attention(q, k[first:], v[first:], start_pos=9 - first)
    assert np.abs(got - want).max() < TOL, (
        f"README task 3: window {window} at position 9 sees positions {first}..9 "
        "(key p is visible when (seq_len - 1) - p < W)"
    )
