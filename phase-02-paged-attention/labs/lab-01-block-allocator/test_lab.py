"""Spec for lab 02-01: the free queue, the chained hash, the pool, and invariants I1-I4.

Block ids and free-queue orders are written out exactly, the way vLLM's own
tests/v1/core/test_prefix_caching.py pins them: an allocator that hands out the right
*number* of blocks in the wrong order is a different eviction policy.
"""
import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.block_pool import NONE_HASH
from mini_vllm.block_pool import hash_block_tokens as reference_hash


def ids(blocks):
    return [b.block_id for b in blocks]


def free_ids(pool):
    return ids(pool.free_block_queue.get_all_free_blocks())


def make_queue(lab, n):
    blocks = [lab.KVCacheBlock(i) for i in range(n)]
    return blocks, lab.FreeKVCacheBlockQueue(blocks)


# --- FreeKVCacheBlockQueue (tasks 1-4) ------------------------------------------------

def test_free_queue_lists_blocks_in_id_order_at_start(lab):
    _, q = make_queue(lab, 5)
    assert ids(q.get_all_free_blocks()) == [0, 1, 2, 3, 4], "task 4: walk from the head sentinel to the tail"
    assert q.num_free_blocks == 5


def test_remove_from_the_middle_keeps_order_count_and_clears_links(lab):
    blocks, q = make_queue(lab, 5)
    q.remove(blocks[2])
    assert ids(q.get_all_free_blocks()) == [0, 1, 3, 4], "task 1: join the removed block's neighbours"
    assert q.num_free_blocks == 4
    assert blocks[2].prev_free_block is None and blocks[2].next_free_block is None, (
        "task 1: a removed block keeps no links (append checks them to catch double frees)"
    )


def test_remove_first_and_last_needs_no_special_case(lab):
    blocks, q = make_queue(lab, 3)
    q.remove(blocks[0])
    q.remove(blocks[2])
    assert ids(q.get_all_free_blocks()) == [1], "task 1: the sentinels make the ends ordinary"
    assert q.fake_free_list_head.next_free_block is blocks[1]
    assert q.fake_free_list_tail.prev_free_block is blocks[1]


def test_remove_of_a_block_not_in_the_queue_raises(lab):
    blocks, q = make_queue(lab, 3)
    q.remove(blocks[1])
    with pytest.raises(RuntimeError):
        q.remove(blocks[1])
    assert q.num_free_blocks == 2, "task 1: a refused remove changes nothing"


def test_popleft_takes_the_front_and_append_adds_at_the_back(lab):
    blocks, q = make_queue(lab, 4)
    first = q.popleft()
    assert first.block_id == 0, "task 2: popleft returns the block after the head sentinel"
    q.append(first)
    assert ids(q.get_all_free_blocks()) == [1, 2, 3, 0], "task 3: append links before the tail sentinel"
    assert q.num_free_blocks == 4


def test_popleft_n_and_append_n_keep_the_given_order(lab):
    blocks, q = make_queue(lab, 5)
    assert ids(q.popleft_n(3)) == [0, 1, 2]
    q.append_n([blocks[2], blocks[0], blocks[1]])
    assert ids(q.get_all_free_blocks()) == [3, 4, 2, 0, 1]
    assert q.num_free_blocks == 5


def test_popleft_on_an_empty_queue_raises_and_never_returns_a_sentinel(lab):
    _, q = make_queue(lab, 1)
    q.popleft()
    with pytest.raises(ValueError):
        q.popleft()
    with pytest.raises(ValueError):
        q.popleft_n(1)
    assert q.get_all_free_blocks() == [] and q.num_free_blocks == 0


def test_append_of_a_block_already_in_the_queue_raises(lab):
    blocks, q = make_queue(lab, 2)
    with pytest.raises(RuntimeError):
        q.append(blocks[0])
    assert ids(q.get_all_free_blocks()) == [0, 1]


# --- hashing (tasks 5-6) ----------------------------------------------------------------

def test_hash_is_sha256_of_parent_then_int64_tokens(lab):
    expected = hashlib.sha256(NONE_HASH + np.asarray([1, 2, 3, 4], dtype="<i8").tobytes()).digest()
    assert lab.hash_block_tokens(None, [1, 2, 3, 4]) == expected, "task 5: first block's parent is NONE_HASH"
    assert lab.hash_block_tokens(None, [1, 2, 3, 4]) == reference_hash(None, [1, 2, 3, 4]), (
        "task 5: must equal mini_vllm's hash so your pool can serve mini_vllm requests"
    )


def test_hash_is_chained_on_the_parent(lab):
    ab = lab.hash_block_tokens(None, [1, 2])
    xy = lab.hash_block_tokens(None, [7, 8])
    assert lab.hash_block_tokens(ab, [3, 4]) != lab.hash_block_tokens(xy, [3, 4]), (
        "task 5: block [3, 4] after [1, 2] holds different K/V than after [7, 8]"
    )


def test_request_hashes_cover_full_blocks_only(lab):
    hashes = lab.hash_request_blocks(list(range(10)), block_size=4)
    assert len(hashes) == 2, "task 6: 10 tokens = 2 full blocks + a partial tail with no hash (I3)"
    assert hashes[0] == reference_hash(None, [0, 1, 2, 3])
    assert hashes[1] == reference_hash(hashes[0], [4, 5, 6, 7]), "task 6: each hash chains on the previous one"
    assert lab.hash_request_blocks([5, 6, 7], block_size=4) == []


# --- BlockPool (tasks 7-11) -------------------------------------------------------------

def test_pool_reserves_block_0_as_the_null_block(lab):
    pool = lab.BlockPool(8)
    assert pool.null_block.block_id == 0 and pool.null_block.is_null
    assert pool.get_num_free_blocks() == 7, "task 11: the null block is never free"
    assert free_ids(pool) == [1, 2, 3, 4, 5, 6, 7]


def test_get_new_blocks_pops_the_front_with_ref_cnt_one(lab):
    pool = lab.BlockPool(8)
    got = pool.get_new_blocks(3)
    assert ids(got) == [1, 2, 3], "task 7: allocation takes the front of the free queue"
    assert [b.ref_cnt for b in got] == [1, 1, 1]
    assert free_ids(pool) == [4, 5, 6, 7]
    assert ids(pool.get_new_blocks(2)) == [4, 5]


def test_asking_for_more_blocks_than_are_free_raises_and_changes_nothing(lab):
    pool = lab.BlockPool(4)
    with pytest.raises(ValueError):
        pool.get_new_blocks(4)
    assert free_ids(pool) == [1, 2, 3], "task 7: check before popping anything"
    assert all(b.ref_cnt == 0 for b in pool.blocks)


def test_free_blocks_appends_in_the_order_given(lab):
    pool = lab.BlockPool(8)
    got = pool.get_new_blocks(4)
    pool.free_blocks(reversed(got))  # the KV manager frees a request tail first
    assert free_ids(pool) == [5, 6, 7, 4, 3, 2, 1], "task 9: first block given = first evicted"
    assert all(b.ref_cnt == 0 for b in got)


def test_shared_block_returns_to_the_queue_only_when_the_last_reference_drops(lab):
    pool = lab.BlockPool(4)
    (b,) = pool.get_new_blocks(1)
    pool.touch([b])
    assert b.ref_cnt == 2, "task 8: touch adds a reference"
    pool.free_blocks([b])
    assert b.ref_cnt == 1 and free_ids(pool) == [2, 3], "task 9: still referenced, so not free (I1)"
    pool.free_blocks([b])
    assert b.ref_cnt == 0 and free_ids(pool) == [2, 3, 1]


def test_double_free_raises(lab):
    pool = lab.BlockPool(4)
    (b,) = pool.get_new_blocks(1)
    pool.free_blocks([b])
    with pytest.raises(AssertionError):
        pool.free_blocks([b])


def test_cache_full_blocks_indexes_them_under_their_hashes(lab):
    pool = lab.BlockPool(8)
    tokens = list(range(8))
    hashes = lab.hash_request_blocks(tokens, 4)
    blocks = pool.get_new_blocks(2)
    pool.cache_full_blocks(blocks, hashes, num_cached_blocks=0, num_full_blocks=2)
    assert [b.block_hash for b in blocks] == hashes
    assert pool.get_cached_block(hashes[0]) is blocks[0]
    assert pool.get_cached_block(hashes[1]) is blocks[1]
    assert pool.get_cached_block(reference_hash(None, [9, 9, 9, 9])) is None


def test_partial_block_is_never_cached_I3(lab):
    pool = lab.BlockPool(8)
    hashes = lab.hash_request_blocks(list(range(6)), 4)  # one full block + 2 tokens
    blocks = pool.get_new_blocks(2)
    with pytest.raises(AssertionError):
        pool.cache_full_blocks(blocks, hashes, num_cached_blocks=0, num_full_blocks=2)
    pool.cache_full_blocks(blocks, hashes, num_cached_blocks=0, num_full_blocks=1)
    assert blocks[0].block_hash == hashes[0] and blocks[1].block_hash is None


def test_identical_content_is_not_deduplicated_I2(lab):
    pool = lab.BlockPool(8)
    hashes = lab.hash_request_blocks([1, 2, 3, 4], 4)
    a = pool.get_new_blocks(1)
    b = pool.get_new_blocks(1)
    pool.cache_full_blocks(a, hashes, 0, 1)
    pool.cache_full_blocks(b, hashes, 0, 1)
    assert ids(a) == [1] and ids(b) == [2], "task 10: each request keeps the block it was given"
    assert sorted(pool.cached_block_hash_to_block[hashes[0]]) == [1, 2], "both copies are indexed"
    assert pool.get_cached_block(hashes[0]) is a[0], "a lookup returns the first one cached"


def test_touch_revives_a_cached_free_block_from_the_middle_I4(lab):
    pool = lab.BlockPool(8)
    hashes = lab.hash_request_blocks(list(range(12)), 4)
    blocks = pool.get_new_blocks(3)
    pool.cache_full_blocks(blocks, hashes, 0, 3)
    pool.free_blocks(reversed(blocks))
    assert free_ids(pool) == [4, 5, 6, 7, 3, 2, 1]
    hit = pool.get_cached_block(hashes[1])
    assert hit is blocks[1] and hit.ref_cnt == 0, "free and still cached (I4)"
    pool.touch([hit])
    assert free_ids(pool) == [4, 5, 6, 7, 3, 1], "task 8: the hit leaves the middle of the queue"
    assert hit.ref_cnt == 1 and hit.block_hash == hashes[1]


def test_reusing_a_cached_free_block_drops_its_cache_entry(lab):
    pool = lab.BlockPool(4)
    hashes = lab.hash_request_blocks(list(range(12)), 4)
    blocks = pool.get_new_blocks(3)
    pool.cache_full_blocks(blocks, hashes, 0, 3)
    pool.free_blocks(reversed(blocks))
    (reused,) = pool.get_new_blocks(1)
    assert reused.block_id == 3, "the tail block was freed first, so it is evicted first"
    assert reused.block_hash is None, "task 7: _maybe_evict_cached_block resets the hash"
    assert pool.get_cached_block(hashes[2]) is None, "task 7: and removes the index entry"
    assert pool.get_cached_block(hashes[0]) is blocks[0], "the other cached blocks survive"


def test_touching_the_null_block_never_puts_it_in_the_queue(lab):
    pool = lab.BlockPool(4)
    pool.touch([pool.null_block])
    pool.free_blocks([pool.null_block])
    assert free_ids(pool) == [1, 2, 3], "task 8/9: the null block is neither removed from nor appended to the queue"


def test_usage_excludes_the_null_block(lab):
    pool = lab.BlockPool(5)
    assert pool.get_usage() == 0.0
    pool.get_new_blocks(1)
    assert pool.get_usage() == 0.25, "task 11: 1 of the 4 usable blocks"
    pool.get_new_blocks(3)
    assert pool.get_usage() == 1.0
    assert lab.BlockPool(1).get_usage() == 0.0


# --- I1-I4 under random operation sequences ---------------------------------------------

def check_invariants(pool, tables):
    """I1: in the free queue <=> ref_cnt 0 (null block excluded); ref counts equal the
    number of tables holding the block. I2: tables unchanged (checked by the caller).
    I3: every hashed block is indexed under its hash, and every index entry is such a
    block. I4: a cached block with ref_cnt 0 is in the free queue."""
    queue = pool.free_block_queue.get_all_free_blocks()
    in_queue = {b.block_id for b in queue}
    assert len(in_queue) == len(queue) == pool.get_num_free_blocks(), "free count out of sync"
    holders = {}
    for table in tables.values():
        for b in table:
            holders[b.block_id] = holders.get(b.block_id, 0) + 1
    for b in pool.blocks:
        if b.is_null:
            assert b.block_id not in in_queue and b.block_hash is None
            continue
        assert b.ref_cnt == holders.get(b.block_id, 0), f"ref_cnt of block {b.block_id} != tables holding it"
        assert (b.block_id in in_queue) == (b.ref_cnt == 0), f"I1 broken for block {b.block_id}"
        if b.block_hash is not None:
            assert pool.cached_block_hash_to_block[b.block_hash][b.block_id] is b, "I3: hashed but not indexed"
            if b.ref_cnt == 0:
                assert b.block_id in in_queue, "I4: a free cached block must stay evictable"
    for h, entries in pool.cached_block_hash_to_block.items():
        assert entries, "empty index entry left behind"
        for b in entries.values():
            assert b.block_hash == h, "index points at a block that no longer holds this hash"


OPS = st.lists(
    st.tuples(st.sampled_from(["admit", "finish"]), st.integers(0, 3), st.integers(1, 13)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(ops=OPS)
def test_invariants_I1_to_I4_hold_after_every_operation(lab, ops):
    """Requests made of 4 possible prompts share prefixes; admit reuses cached blocks
    like the KV manager does (touch the hits, allocate the rest, cache the full ones),
    finish frees tail first."""
    block_size = 4
    prompts = [[1] * 13, [1] * 8 + [2] * 5, [3] * 13, [1] * 4 + [4] * 9]
    pool = lab.BlockPool(9)
    tables, snapshots = {}, {}
    next_id = 0
    for op, which, length in ops:
        if op == "admit":
            tokens = prompts[which][:length]
            hashes = lab.hash_request_blocks(tokens, block_size)
            hits = []
            for h in hashes[: (len(tokens) - 1) // block_size]:
                b = pool.get_cached_block(h)
                if b is None:
                    break
                hits.append(b)
            need = -(-len(tokens) // block_size) - len(hits)
            evictable_hits = sum(1 for b in hits if b.ref_cnt == 0)
            if need + evictable_hits > pool.get_num_free_blocks():
                continue
            pool.touch(hits)
            table = hits + pool.get_new_blocks(need)
            pool.cache_full_blocks(table, hashes, len(hits), len(hashes))
            tables[next_id] = table
            snapshots[next_id] = ids(table)
            next_id += 1
        elif tables:
            rid = sorted(tables)[which % len(tables)]
            pool.free_blocks(reversed(tables.pop(rid)))
            snapshots.pop(rid)
        for rid, table in tables.items():
            assert ids(table) == snapshots[rid], "I2: a request's block ids changed"
        check_invariants(pool, tables)
