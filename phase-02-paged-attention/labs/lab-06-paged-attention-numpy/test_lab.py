"""Spec for lab 02-06: slot mapping, scatter, gather and batched decode attention in numpy.

Paged attention is dense attention read through an index, so in float64 with the same
operation order the two agree to 1e-12; anything bigger is a bug, not rounding.
Unused slots are poisoned with 1e6: a read that is not masked moves the answer by a lot.
"""
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.attention import dense_causal_attention

TOL = 1e-12
POISON = 1e6


def make_batch(rng, seq_lens, block_size, num_heads=4, num_kv_heads=2, head_dim=8, spare_blocks=3):
    """A poisoned cache, shuffled block tables padded with the null block 0, and each
    request's logical K/V ([T, Hkv, D]) for the dense reference."""
    need = [-(-n // block_size) for n in seq_lens]
    num_blocks = 1 + sum(need) + spare_blocks
    perm = rng.permutation(np.arange(1, num_blocks))
    tables = np.zeros((len(seq_lens), max(need)), dtype=np.int64)
    used = 0
    for b, n in enumerate(need):
        tables[b, :n] = perm[used:used + n]
        used += n
    cache = np.full((2, num_blocks, block_size, num_kv_heads, head_dim), POISON)
    ks = [rng.standard_normal((n, num_kv_heads, head_dim)) for n in seq_lens]
    vs = [rng.standard_normal((n, num_kv_heads, head_dim)) for n in seq_lens]
    q = rng.standard_normal((len(seq_lens), num_heads, head_dim))
    return q, cache, tables, ks, vs


def fill(lab, cache, tables, ks, vs, block_size):
    for b, (k, v) in enumerate(zip(ks, vs)):
        lab.write_kv(cache, lab.build_slot_mapping(tables[b], block_size, 0, len(k)), k, v)


def dense(q, ks, vs):
    return np.stack([dense_causal_attention(q[b][None], k, v, start_pos=len(k) - 1)[0]
                     for b, (k, v) in enumerate(zip(ks, vs))])


# --- the write map (tasks 1-3) ----------------------------------------------------------

def test_slot_mapping_formula_at_block_edges(lab):
    table = [5, 2, 9]
    assert lab.build_slot_mapping(table, 4, 0, 12).tolist() == [20, 21, 22, 23, 8, 9, 10, 11, 36, 37, 38, 39]
    assert lab.build_slot_mapping(table, 4, 3, 3).tolist() == [23, 8, 9], "task 1: a range may cross a block edge"
    assert lab.build_slot_mapping(table, 4, 7, 1).tolist() == [11], "a decode step writes one slot"


def test_batch_slot_mapping_concatenates_each_requests_new_positions(lab):
    tables = np.array([[5, 2, 9], [1, 7, 0]])
    got = lab.build_batch_slot_mapping(tables, 4, num_computed=[0, 7], num_scheduled=[5, 1])
    assert got.tolist() == [20, 21, 22, 23, 8, 31], (
        "task 2: request 0 prefills positions 0-4, request 1 decodes position 7 (block 7, row 3)"
    )
    chunk = lab.build_batch_slot_mapping(tables, 4, num_computed=[4, 0], num_scheduled=[4, 6])
    assert chunk.tolist() == [8, 9, 10, 11, 4, 5, 6, 7, 28, 29], "a chunked prefill starts mid-sequence"


def test_write_kv_lands_in_the_cache_in_place(lab):
    cache = np.zeros((2, 3, 4, 1, 2))
    k = np.arange(6.0).reshape(3, 1, 2)
    lab.write_kv(cache, [9, 2, 3], k, -k)
    assert cache[0, 2, 1].tolist() == [[0.0, 1.0]], "task 3: slot 9 = block 2, row 1"
    assert cache[0, 0, 2:, 0].tolist() == [[2.0, 3.0], [4.0, 5.0]]
    assert cache[1, 0, 3, 0].tolist() == [-4.0, -5.0]
    assert np.count_nonzero(cache) == 10, "only the 3 slots written (k[0, 0, 0] and v[0, 0, 0] are 0)"


# --- the read map (tasks 4-5) -----------------------------------------------------------

def test_gather_slots_pads_to_the_longest_request_and_masks(lab):
    tables = np.array([[5, 2], [1, 0]])
    slots, mask = lab.gather_slots(tables, np.array([6, 2]), 4)
    assert slots.tolist() == [[20, 21, 22, 23, 8, 9], [4, 5, 6, 7, 0, 1]], "task 4"
    assert mask.tolist() == [[True] * 6, [True, True, False, False, False, False]]


def test_write_then_gather_round_trips(lab):
    rng = np.random.default_rng(0)
    _, cache, tables, ks, vs = make_batch(rng, [7, 16, 3], 4)
    fill(lab, cache, tables, ks, vs, 4)
    slots, mask = lab.gather_slots(tables, [7, 16, 3], 4)
    flat = cache.reshape(2, -1, 2, 8)
    for b, k in enumerate(ks):
        np.testing.assert_array_equal(flat[0, slots[b][mask[b]]], k)
        np.testing.assert_array_equal(flat[1, slots[b][mask[b]]], vs[b])


@pytest.mark.parametrize("block_size", [1, 4, 16])
def test_paged_equals_dense_exactly_on_ragged_lengths(lab, block_size):
    rng = np.random.default_rng(block_size)
    lens = [1, 16, 35, 64]
    q, cache, tables, ks, vs = make_batch(rng, lens, block_size)
    fill(lab, cache, tables, ks, vs, block_size)
    np.testing.assert_allclose(lab.paged_decode_attention(q, cache, tables, lens), dense(q, ks, vs),
                               rtol=0, atol=TOL, err_msg="task 5: gather through the table, mask by seq_len")


def test_poisoned_tail_slots_never_reach_the_output(lab):
    rng = np.random.default_rng(7)
    q, cache, tables, ks, vs = make_batch(rng, [35, 2], 16)
    fill(lab, cache, tables, ks, vs, 16)
    assert (cache[0, tables[0, 2], 3:] == POISON).all(), "35 tokens: block 3 holds 3, the other 13 slots are poison"
    out = lab.paged_decode_attention(q, cache, tables, [35, 2])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, dense(q, ks, vs), rtol=0, atol=TOL,
                               err_msg="positions >= seq_len must get weight 0 and value 0")


def test_query_heads_share_kv_heads_in_groups(lab):
    rng = np.random.default_rng(3)
    q, cache, tables, ks, vs = make_batch(rng, [9, 20], 4, num_heads=6, num_kv_heads=2)
    fill(lab, cache, tables, ks, vs, 4)
    out = lab.paged_decode_attention(q, cache, tables, [9, 20])
    np.testing.assert_allclose(out, dense(q, ks, vs), rtol=0, atol=TOL, err_msg="head h reads KV head h // 3")


def test_physical_layout_is_invisible(lab):
    rng = np.random.default_rng(11)
    q, cache, tables, ks, vs = make_batch(rng, [30], 8, spare_blocks=6)
    fill(lab, cache, tables, ks, vs, 8)
    other_cache = np.full_like(cache, POISON)
    other_tables = np.array([[9, 1, 7, 3]])
    fill(lab, other_cache, other_tables, ks, vs, 8)
    a = lab.paged_decode_attention(q, cache, tables, [30])
    b = lab.paged_decode_attention(q, other_cache, other_tables, [30])
    assert np.array_equal(a, b), "same tokens in other blocks: bit-identical output"


@settings(max_examples=25, deadline=None, derandomize=True)
@given(lens=st.lists(st.integers(1, 40), min_size=1, max_size=4), block_size=st.sampled_from([2, 4, 16]),
       seed=st.integers(0, 2**16))
def test_paged_equals_dense_for_any_batch(lab, lens, block_size, seed):
    rng = np.random.default_rng(seed)
    q, cache, tables, ks, vs = make_batch(rng, lens, block_size)
    fill(lab, cache, tables, ks, vs, block_size)
    np.testing.assert_allclose(lab.paged_decode_attention(q, cache, tables, lens), dense(q, ks, vs), rtol=0, atol=TOL)


def test_no_python_loop_over_tokens(lab):
    """Counts the lines executed inside the lab file during one call: a vectorised
    implementation runs a fixed few dozen; a loop over 4 x 1000 tokens (or 4 x 63
    blocks) runs hundreds."""
    rng = np.random.default_rng(5)
    lens = [1000, 990, 1000, 1]
    q, cache, tables, ks, vs = make_batch(rng, lens, 16, head_dim=4)
    fill(lab, cache, tables, ks, vs, 16)
    lab_file = sys.modules[lab.__name__].__file__
    lines = 0

    def tracer(frame, event, arg):
        nonlocal lines
        if frame.f_code.co_filename == lab_file:
            if event == "line":
                lines += 1
            return tracer
        return None

    sys.settrace(tracer)
    try:
        lab.paged_decode_attention(q, cache, tables, lens)
    finally:
        sys.settrace(None)
    assert 0 < lines < 100, f"{lines} lines ran for 2991 tokens: vectorise the gather and the softmax (task 5)"
