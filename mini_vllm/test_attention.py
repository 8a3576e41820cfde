"""attention.py: dense, paged and split-KV (flash-decoding) attention agree to 1e-12."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.attention import (
    AttentionState,
    dense_causal_attention,
    finalize,
    gather_kv,
    merge_attention_states,
    paged_attention,
    partial_attention,
    write_kv,
)

RNG = np.random.default_rng(0)


def qkv(m, n, h=4, hkv=2, d=8, rng=RNG):
    return rng.standard_normal((m, h, d)), rng.standard_normal((n, hkv, d)), rng.standard_normal((n, hkv, d))


def naive(q, k, v, start_pos):
    """One query, one head at a time: the definition."""
    out = np.zeros_like(q)
    group = q.shape[1] // k.shape[1]
    for i in range(q.shape[0]):
        for h in range(q.shape[1]):
            keys, vals = k[: start_pos + i + 1, h // group], v[: start_pos + i + 1, h // group]
            s = keys @ q[i, h] / np.sqrt(q.shape[2])
            p = np.exp(s - s.max())
            out[i, h] = (p / p.sum()) @ vals
    return out


@pytest.mark.parametrize("m,n", [(1, 1), (1, 9), (5, 5), (4, 11)])
def test_dense_causal_attention_matches_the_definition_with_gqa(m, n):
    q, k, v = qkv(m, n)
    np.testing.assert_allclose(dense_causal_attention(q, k, v, start_pos=n - m), naive(q, k, v, n - m), atol=1e-12)


def test_query_heads_share_kv_heads_in_groups():
    q, k, v = qkv(1, 6, h=4, hkv=2)
    k[:, 1], v[:, 1] = 0.0, 0.0  # kv head 1 serves query heads 2 and 3
    out = dense_causal_attention(q, k, v, start_pos=5)
    assert np.all(out[0, 2:] == 0.0) and np.all(out[0, :2] != 0.0)


def test_write_then_gather_round_trips_through_a_scattered_table():
    cache = np.zeros((2, 6, 4, 2, 8))
    _, k, v = qkv(1, 10)
    table = [4, 1, 5]
    pos = np.arange(10)
    write_kv(cache, np.asarray(table)[pos // 4] * 4 + pos % 4, k, v)
    k2, v2 = gather_kv(cache, table, 10)
    np.testing.assert_array_equal(k2, k)
    np.testing.assert_array_equal(v2, v)
    assert np.all(cache[:, [0, 2, 3]] == 0.0), "untouched blocks stay untouched"


def test_negative_slots_are_padding_and_out_of_range_slots_raise():
    cache = np.zeros((2, 2, 4, 2, 8))
    _, k, v = qkv(1, 2)
    write_kv(cache, [-1, 5], k, v)
    assert np.all(cache[0, 1, 1] == k[1]) and np.count_nonzero(cache[0]) == k[1].size
    with pytest.raises(ValueError, match="out of range"):
        write_kv(cache, [0, 8], k, v)
    with pytest.raises(ValueError, match="too short"):
        gather_kv(cache, [1], 5)


def test_paged_attention_equals_dense_attention():
    q, k, v = qkv(3, 10)
    cache = np.zeros((2, 8, 4, 2, 8))
    table = [6, 2, 7]
    pos = np.arange(10)
    write_kv(cache, np.asarray(table)[pos // 4] * 4 + pos % 4, k, v)
    np.testing.assert_allclose(paged_attention(q, cache, table, 10, start_pos=7),
                               dense_causal_attention(q, k, v, start_pos=7), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 4), n_extra=st.integers(0, 12), cuts=st.lists(st.integers(0, 16), max_size=4),
       seed=st.integers(0, 2**16))
def test_split_kv_merge_equals_dense_to_1e12(m, n_extra, cuts, seed):
    q, k, v = qkv(m, m + n_extra, rng=np.random.default_rng(seed))
    n, start = k.shape[0], n_extra
    bounds = sorted({0, n, *[min(c, n) for c in cuts]})
    state = partial_attention(q, k[:0], v[:0])
    for lo, hi in zip(bounds, bounds[1:]):
        part = partial_attention(q, k[lo:hi], v[lo:hi], start_pos=start, key_offset=lo)
        state = merge_attention_states(state, part)
    np.testing.assert_allclose(finalize(state), dense_causal_attention(q, k, v, start_pos=start), atol=1e-12)


def test_merge_is_order_independent():
    q, k, v = qkv(1, 8)
    a = partial_attention(q, k[:3], v[:3])
    b = partial_attention(q, k[3:], v[3:])
    np.testing.assert_allclose(finalize(merge_attention_states(a, b)), finalize(merge_attention_states(b, a)), atol=1e-15)


def test_empty_partitions_merge_without_nan():
    q, k, v = qkv(2, 0)
    empty = partial_attention(q, k, v)
    assert np.all(np.isneginf(empty.m)) and np.all(empty.l == 0.0)
    both = merge_attention_states(empty, empty)
    assert not np.isnan(both.acc).any() and np.all(finalize(both) == 0.0), "no keys -> zeros, not NaN"
    one_empty = AttentionState(empty.m[:1], empty.l[:1], empty.acc[:1])
    q, k, v = qkv(1, 4)
    real = partial_attention(q, k, v)
    np.testing.assert_allclose(finalize(merge_attention_states(one_empty, real)), finalize(real), atol=1e-15)


def test_fully_masked_partition_is_empty():
    q, k, v = qkv(1, 4)
    future = partial_attention(q, k, v, start_pos=0, key_offset=1)  # all keys after the query
    assert np.all(np.isneginf(future.m)) and np.all(future.acc == 0.0)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="multiple of"):
        dense_causal_attention(np.zeros((1, 3, 8)), np.zeros((1, 2, 8)), np.zeros((1, 2, 8)))
    with pytest.raises(ValueError, match="need that many keys"):
        dense_causal_attention(*qkv(2, 1))


def test_an_explicit_scale_is_used_instead_of_one_over_sqrt_head_dim():
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((2, 2, 4)), rng.standard_normal((5, 2, 4)), rng.standard_normal((5, 2, 4))
    default = dense_causal_attention(q, k, v, start_pos=3)
    assert np.allclose(dense_causal_attention(q, k, v, start_pos=3, scale=0.5), default), "0.5 = 1/sqrt(4)"
    hot = dense_causal_attention(q, k, v, start_pos=3, scale=4.0)
    assert not np.allclose(hot, default), "scale=4.0 must sharpen the softmax"
    s = np.einsum("md,nd->mn", q[:, 0], k[:, 0]) * 4.0
    s[0, 4] = -np.inf
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(hot[:, 0], p @ v[:, 0], rtol=1e-12)
