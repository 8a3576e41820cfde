"""Spec for lab 04-03: causal prefill over a paged cache; chunked prefill == one-shot."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.attention import dense_causal_attention, paged_attention, write_kv

TOL = 1e-12


def prompt(rng, n, num_heads=4, num_kv_heads=2, head_dim=8):
    return (
        rng.standard_normal((n, num_heads, head_dim)),
        rng.standard_normal((n, num_kv_heads, head_dim)),
        rng.standard_normal((n, num_kv_heads, head_dim)),
    )


def cache_with(rng, num_blocks, block_size, k, v, table, upto):
    """Garbage-filled cache holding positions 0..upto-1 of (k, v) through ``table``."""
    cache = rng.standard_normal((2, num_blocks, block_size) + k.shape[1:])
    pos = np.arange(upto)
    write_kv(cache, np.asarray(table)[pos // block_size] * block_size + pos % block_size, k[:upto], v[:upto])
    return cache


def test_each_query_sees_its_own_position_and_everything_before(lab):
    assert lab.causal_key_counts(5, 4).tolist() == [6, 7, 8, 9], "query i at start_pos+i sees start_pos+i+1 keys"
    assert lab.causal_key_counts(0, 3).tolist() == [1, 2, 3], "the first prompt token attends to itself only"


def test_slot_mapping_is_the_write_map(lab):
    slots = lab.compute_slot_mapping([3, 1, 7], 5, 5, 4)
    assert np.asarray(slots).tolist() == [5, 6, 7, 28, 29], (
        "positions 5..9 live in logical blocks 1,1,1,2,2 -> physical 1,1,1,7,7 -> slot = block*4 + pos%4"
    )


def test_tile_kinds(lab):
    assert lab.classify_tile(5, 9, 0, 4) == "full", "keys 0..3 are before the earliest query (5): no mask"
    assert lab.classify_tile(5, 9, 4, 8) == "diagonal", "keys 6, 7 are after query 5: mask needed"
    assert lab.classify_tile(5, 9, 8, 9) == "diagonal"
    assert lab.classify_tile(0, 4, 4, 8) == "skip", "keys 4..7 are after the last query (3)"
    assert [lab.classify_tile(12, 13, s, min(s + 4, 13)) for s in (0, 4, 8, 12)] == ["full"] * 4, (
        "a decode query is the last position: no key tile ever needs a mask"
    )


def test_one_shot_prefill_tile_census(lab):
    counts = {"skip": 0, "full": 0, "diagonal": 0}
    for qs in range(0, 1024, 16):
        for ks in range(0, 1024, 16):
            counts[lab.classify_tile(qs, qs + 16, ks, ks + 16)] += 1
    assert counts == {"skip": 2016, "full": 2016, "diagonal": 64}, (
        "1024 tokens in 16x16 tiles: 64*63/2 tiles skipped, as many unmasked, 64 on the diagonal"
    )


def test_full_prefill_from_position_zero(lab):
    rng = np.random.default_rng(0)
    table = [2, 5, 0, 3]
    q, k, v = prompt(rng, 13)
    cache = cache_with(rng, 6, 4, k, v, table, 13)
    got = lab.paged_prefill_attention(q, cache, table, 0)
    assert got.shape == (13, 4, 8)
    assert np.abs(got - dense_causal_attention(q, k, v)).max() < TOL, (
        "13 tokens in blocks of 4: row 0 sees 1 key, row 12 sees all 13 (last block holds 1)"
    )


def test_mid_sequence_chunk(lab):
    rng = np.random.default_rng(1)
    table = [1, 3, 0]
    q, k, v = prompt(rng, 9)
    cache = cache_with(rng, 4, 4, k, v, table, 9)
    got = lab.paged_prefill_attention(q[5:], cache, table, 5)
    want = dense_causal_attention(q[5:], k, v, start_pos=5)
    assert np.abs(got - want).max() < TOL, "queries 5..8 start mid-block 1; each sees keys 0..its own position"


def test_decode_is_prefill_with_one_query(lab):
    rng = np.random.default_rng(2)
    table = [4, 1, 2]
    q, k, v = prompt(rng, 11)
    cache = cache_with(rng, 5, 4, k, v, table, 11)
    got = lab.paged_prefill_attention(q[10:], cache, table, 10)
    assert np.abs(got - paged_attention(q[10:], cache, table, 11, start_pos=10)).max() < TOL


def test_chunked_equals_one_shot(lab):
    rng = np.random.default_rng(3)
    table = [6, 2, 4]
    q, k, v = prompt(rng, 12)
    one = lab.chunked_prefill(q, k, v, [12], rng.standard_normal((2, 7, 4, 2, 8)), table)
    two = lab.chunked_prefill(q, k, v, [5, 7], rng.standard_normal((2, 7, 4, 2, 8)), table)
    assert two.shape == (12, 4, 8)
    assert np.abs(one - two).max() < TOL, "a chunk is a prefill whose queries start at start_pos, nothing more"
    assert np.abs(one - dense_causal_attention(q, k, v)).max() < TOL


def test_garbage_after_the_causal_bound_changes_nothing(lab):
    rng = np.random.default_rng(4)
    table = [0, 1, 2, 3]
    q, k, v = prompt(rng, 16)
    clean = cache_with(rng, 4, 4, k, v, table, 9)
    poisoned = clean.copy()
    poisoned[:, 2, 1:] = 1e3  # positions 9..11: not written yet when the chunk 5..8 runs
    poisoned[:, 3] = -1e3  # positions 12..15
    a = lab.paged_prefill_attention(q[5:9], clean, table, 5)
    b = lab.paged_prefill_attention(q[5:9], poisoned, table, 5)
    assert np.array_equal(a, b), "the chunk 5..8 must never read a slot for position 9 or later"


def test_loud_last_token_is_heard_only_by_itself(lab):
    rng = np.random.default_rng(5)
    table = [3, 0]
    q, k, v = prompt(rng, 8)
    k_loud, v_loud = k.copy(), v.copy()
    k_loud[7] *= 1e3
    v_loud[7] = 1e3
    quiet = lab.paged_prefill_attention(q, cache_with(rng, 4, 4, k, v, table, 8), table, 0)
    loud = lab.paged_prefill_attention(q, cache_with(rng, 4, 4, k_loud, v_loud, table, 8), table, 0)
    assert np.array_equal(quiet[:7], loud[:7]), "rows 0..6 come before position 7: they must not see it"
    assert np.abs(quiet[7] - loud[7]).max() > 1.0, "row 7 attends to itself"


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    cuts=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    block_size=st.sampled_from([1, 2, 4, 8]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_chunking_matches_dense(lab, cuts, block_size, seed):
    rng = np.random.default_rng(seed)
    n = sum(cuts)
    num_blocks = -(-n // block_size) + 2
    table = rng.permutation(num_blocks)[: -(-n // block_size)].tolist()
    q, k, v = prompt(rng, n, 2, 1, 4)
    got = lab.chunked_prefill(q, k, v, cuts, rng.standard_normal((2, num_blocks, block_size, 1, 4)), table)
    assert np.abs(got - dense_causal_attention(q, k, v)).max() < TOL


def test_tile_boundaries_are_half_open(lab):
    assert lab.classify_tile(5, 9, 2, 6) == "full", (
        "README task 3: keys 2..5 against queries 5..8: the last key IS the first query, which sees it: no mask"
    )
    assert lab.classify_tile(5, 9, 3, 7) == "diagonal", "key 6 is after query 5: this tile needs the mask"
    assert lab.classify_tile(5, 9, 8, 12) == "diagonal", "key 8 is the last query's own: not a skip"
    assert lab.classify_tile(5, 9, 9, 13) == "skip", "README task 3: q_end = 9 is exclusive, so key 9 is after every query"


def test_nan_padding_past_the_sequence_is_never_read(lab):
    rng = np.random.default_rng(6)
    table = [2, 0, 1]
    q, k, v = prompt(rng, 10)
    cache = cache_with(rng, 3, 4, k, v, table, 10)
    cache[:, 1, 2:] = np.nan  # rows for positions 10, 11: past the end of the sequence
    with np.errstate(invalid="ignore"):
        got = lab.paged_prefill_attention(q[6:], cache, table, 6)
    assert np.isfinite(got).all() and np.abs(got - dense_causal_attention(q[6:], k, v, start_pos=6)).max() < TOL, (
        "README task 4: the last block holds 2 rows of this sequence; read only those (a masked NaN still poisons p @ V)"
    )


@pytest.mark.parametrize("scale", [0.1, 1.0])
def test_an_explicit_scale_reaches_every_tile(lab, scale):
    rng = np.random.default_rng(7)
    table = [3, 1, 0, 2]
    q, k, v = prompt(rng, 14)
    cache = cache_with(rng, 4, 4, k, v, table, 14)
    got = lab.paged_prefill_attention(q[9:], cache, table, 9, scale=scale)
    assert np.abs(got - dense_causal_attention(q[9:], k, v, start_pos=9, scale=scale)).max() < TOL, (
        f"README task 4: scale={scale} must be used on full tiles and diagonal tiles alike"
    )
    chunked = lab.chunked_prefill(q, k, v, [6, 8], rng.standard_normal((2, 4, 4, 2, 8)), table, scale=scale)
    assert np.abs(chunked - dense_causal_attention(q, k, v, scale=scale)).max() < TOL, (
        f"README task 5: pass scale={scale} on to every chunk"
    )
