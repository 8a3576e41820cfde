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
from mini_vllm.engine import LLM
from mini_vllm.request import Request
from mini_vllm.sampler import SamplingParams


def ids(blocks):
    return [b.block_id for b in blocks]


def free_ids(pool):
    return ids(pool.free_block_queue.get_all_free_blocks())


def make_request(lab, tokens, block_size=4, request_id="r"):
    """A real engine Request whose block hashes come from the lab's hasher."""
    return Request(request_id, list(tokens), SamplingParams(max_tokens=4),
                   block_hasher=lab.get_request_block_hasher(block_size))


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


def test_popleft_n_of_exactly_every_free_block_succeeds(lab):
    _, q = make_queue(lab, 3)
    assert ids(q.popleft_n(3)) == [0, 1, 2], "task 2: asking for exactly num_free_blocks is allowed"
    assert q.num_free_blocks == 0 and q.get_all_free_blocks() == []


def test_popleft_n_of_too_many_pops_nothing(lab):
    _, q = make_queue(lab, 3)
    with pytest.raises(ValueError):
        q.popleft_n(4)
    assert ids(q.get_all_free_blocks()) == [0, 1, 2] and q.num_free_blocks == 3, (
        "task 2: check the count before popping anything"
    )


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
    big = [2**40, 7, 0, 300]
    assert lab.hash_block_tokens(expected, big) == reference_hash(expected, big), (
        "task 5: must equal mini_vllm's hash (tokens as 8-byte little-endian ints) so your pool can serve the engine"
    )


def test_hash_is_chained_on_the_parent(lab):
    ab = lab.hash_block_tokens(None, [1, 2])
    xy = lab.hash_block_tokens(None, [7, 8])
    assert lab.hash_block_tokens(ab, [3, 4]) != lab.hash_block_tokens(xy, [3, 4]), (
        "task 5: block [3, 4] after [1, 2] holds different K/V than after [7, 8]"
    )


def test_request_hashes_cover_full_blocks_only(lab):
    hashes = make_request(lab, range(10), block_size=4).block_hashes
    assert len(hashes) == 2, "task 6: 10 tokens = 2 full blocks + a partial tail with no hash (I3)"
    assert hashes[0] == reference_hash(None, [0, 1, 2, 3])
    assert hashes[1] == reference_hash(hashes[0], [4, 5, 6, 7]), "task 6: each hash chains on the previous one"
    assert make_request(lab, [5, 6, 7], block_size=4).block_hashes == []


@pytest.mark.parametrize("block_size, num_tokens, num_hashes", [(4, 8, 2), (4, 7, 1), (3, 9, 3), (1, 3, 3), (16, 15, 0)])
def test_request_hashes_at_block_boundaries(lab, block_size, num_tokens, num_hashes):
    tokens = list(range(100, 100 + num_tokens))
    hashes = make_request(lab, tokens, block_size).block_hashes
    expected, parent = [], None
    for start in range(0, num_hashes * block_size, block_size):
        parent = reference_hash(parent, tokens[start : start + block_size])
        expected.append(parent)
    assert hashes == expected, (
        f"task 6: {num_tokens} tokens in blocks of {block_size} have exactly {num_hashes} full blocks"
    )


def test_hasher_returns_only_the_blocks_that_filled_since_the_last_call(lab):
    request = make_request(lab, range(6), block_size=4)
    assert len(request.block_hashes) == 1
    request.append_output_token_ids(6)
    assert len(request.block_hashes) == 1, "task 6: 7 tokens still fill one block"
    request.append_output_token_ids(7)
    assert len(request.block_hashes) == 2, (
        "task 6: the 8th token fills block 2; the hasher returns only the new hash (Request extends its list)"
    )
    assert request.block_hashes[1] == reference_hash(request.block_hashes[0], [4, 5, 6, 7]), (
        "task 6: a new block chains on request.block_hashes[-1]"
    )


# --- BlockPool (tasks 7-11) -------------------------------------------------------------

def cached_pool(lab, num_blocks, tokens, block_size=4):
    """A pool whose first blocks hold ``tokens``, every full block cached."""
    pool = lab.BlockPool(num_blocks)
    request = make_request(lab, tokens, block_size)
    blocks = pool.get_new_blocks(-(-len(tokens) // block_size))
    pool.cache_full_blocks(request, blocks, 0, len(request.block_hashes), block_size)
    return pool, request, blocks


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


def test_get_new_blocks_can_take_every_free_block(lab):
    pool = lab.BlockPool(4)
    assert ids(pool.get_new_blocks(3)) == [1, 2, 3], "task 7: exactly the free count is allowed"
    assert pool.get_num_free_blocks() == 0 and pool.get_new_blocks(0) == []


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


def test_free_of_a_mix_requeues_only_the_blocks_that_reach_zero(lab):
    pool = lab.BlockPool(6)
    a, b, c = pool.get_new_blocks(3)
    pool.touch([b])
    pool.free_blocks([a, b, c])
    assert [a.ref_cnt, b.ref_cnt, c.ref_cnt] == [0, 1, 0]
    assert free_ids(pool) == [4, 5, 1, 3], "task 9: b is still held by someone, so it stays out of the queue"


def test_double_free_raises(lab):
    pool = lab.BlockPool(4)
    (b,) = pool.get_new_blocks(1)
    pool.free_blocks([b])
    with pytest.raises(AssertionError):
        pool.free_blocks([b])
    assert b.ref_cnt == 0 and free_ids(pool) == [2, 3, 1], "task 9: a refused free leaves the queue alone"


def test_cache_full_blocks_indexes_them_under_their_hashes(lab):
    pool, request, blocks = cached_pool(lab, 8, range(8))
    assert [b.block_hash for b in blocks] == request.block_hashes
    assert pool.get_cached_block(request.block_hashes[0]) is blocks[0]
    assert pool.get_cached_block(request.block_hashes[1]) is blocks[1]
    assert pool.get_cached_block(reference_hash(None, [9, 9, 9, 9])) is None


def test_cache_full_blocks_registers_only_the_new_range(lab):
    pool = lab.BlockPool(8)
    request = make_request(lab, range(12))
    blocks = pool.get_new_blocks(3)
    pool.cache_full_blocks(request, blocks, 0, 1, 4)
    pool.cache_full_blocks(request, blocks, 1, 3, 4)
    assert [b.block_hash for b in blocks] == request.block_hashes, (
        "task 10: blocks[num_cached_blocks:num_full_blocks] take the hashes at the same positions"
    )
    assert sorted(len(e) for e in pool.cached_block_hash_to_block.values()) == [1, 1, 1]


def test_partial_block_is_never_cached_I3(lab):
    pool = lab.BlockPool(8)
    request = make_request(lab, range(6))  # one full block + 2 tokens
    blocks = pool.get_new_blocks(2)
    with pytest.raises(AssertionError):
        pool.cache_full_blocks(request, blocks, 0, 2, 4)
    pool.cache_full_blocks(request, blocks, 0, 1, 4)
    assert blocks[0].block_hash == request.block_hashes[0] and blocks[1].block_hash is None


def test_identical_content_is_not_deduplicated_I2(lab):
    pool = lab.BlockPool(8)
    first, second = make_request(lab, [1, 2, 3, 4], request_id="a"), make_request(lab, [1, 2, 3, 4], request_id="b")
    a = pool.get_new_blocks(1)
    b = pool.get_new_blocks(1)
    pool.cache_full_blocks(first, a, 0, 1, 4)
    pool.cache_full_blocks(second, b, 0, 1, 4)
    (h,) = first.block_hashes
    assert ids(a) == [1] and ids(b) == [2], "task 10: each request keeps the block it was given"
    assert sorted(pool.cached_block_hash_to_block[h]) == [1, 2], "both copies are indexed"
    assert pool.get_cached_block(h) is a[0], "a lookup returns the first one cached"


def test_touch_revives_a_cached_free_block_from_the_middle_I4(lab):
    pool, request, blocks = cached_pool(lab, 8, range(12))
    pool.free_blocks(reversed(blocks))
    assert free_ids(pool) == [4, 5, 6, 7, 3, 2, 1]
    hit = pool.get_cached_block(request.block_hashes[1])
    assert hit is blocks[1] and hit.ref_cnt == 0, "free and still cached (I4)"
    pool.touch([hit])
    assert free_ids(pool) == [4, 5, 6, 7, 3, 1], "task 8: the hit leaves the middle of the queue"
    assert hit.ref_cnt == 1 and hit.block_hash == request.block_hashes[1]


def test_reusing_a_cached_free_block_drops_its_cache_entry(lab):
    pool, request, blocks = cached_pool(lab, 4, range(12))
    hashes = request.block_hashes
    pool.free_blocks(reversed(blocks))
    (reused,) = pool.get_new_blocks(1)
    assert reused.block_id == 3, "the tail block was freed first, so it is evicted first"
    assert reused.block_hash is None, "task 7: _maybe_evict_cached_block resets the hash"
    assert pool.get_cached_block(hashes[2]) is None, "task 7: and removes the index entry"
    assert hashes[2] not in pool.cached_block_hash_to_block, "task 7: an emptied index entry is deleted"
    assert pool.get_cached_block(hashes[0]) is blocks[0], "the other cached blocks survive"
    pool.free_blocks([reused])
    pool.check_invariants()


def test_evicting_one_copy_keeps_the_other_indexed(lab):
    pool = lab.BlockPool(3)
    first, second = make_request(lab, [1, 2, 3, 4], request_id="a"), make_request(lab, [1, 2, 3, 4], request_id="b")
    a, b = pool.get_new_blocks(1), pool.get_new_blocks(1)
    pool.cache_full_blocks(first, a, 0, 1, 4)
    pool.cache_full_blocks(second, b, 0, 1, 4)
    pool.free_blocks(a)
    (reused,) = pool.get_new_blocks(1)
    assert reused is a[0] and reused.block_hash is None
    assert pool.get_cached_block(first.block_hashes[0]) is b[0], (
        "task 7: only the evicted block leaves the entry; the other copy still serves hits"
    )


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


def test_reset_prefix_cache_is_refused_while_a_block_is_in_use(lab):
    pool, request, blocks = cached_pool(lab, 8, range(8))
    assert pool.reset_prefix_cache() is False, "task 11: blocks 1-2 are in use"
    assert pool.get_cached_block(request.block_hashes[0]) is blocks[0], "task 11: a refused reset changes nothing"
    pool.free_blocks(blocks)
    assert pool.reset_prefix_cache() is True
    assert pool.cached_block_hash_to_block == {} and all(b.block_hash is None for b in blocks)
    assert pool.get_cached_block(request.block_hashes[0]) is None


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


@settings(max_examples=60, deadline=None, derandomize=True)
@given(ops=OPS)
def test_invariants_I1_to_I4_hold_after_every_operation(lab, ops):
    """Requests made of 4 possible prompts share prefixes; admit reuses cached blocks
    like the KV manager does (touch the hits, allocate the rest, cache the full ones),
    finish frees tail first. Derandomized: the same 60 sequences on every run."""
    block_size = 4
    prompts = [[1] * 13, [1] * 8 + [2] * 5, [3] * 13, [1] * 4 + [4] * 9]
    pool = lab.BlockPool(9)
    tables, snapshots = {}, {}
    next_id = 0
    for op, which, length in ops:
        if op == "admit":
            request = make_request(lab, prompts[which][:length], block_size, request_id=str(next_id))
            hashes = request.block_hashes
            hits = []
            for h in hashes[: (request.num_tokens - 1) // block_size]:
                b = pool.get_cached_block(h)
                if b is None:
                    break
                hits.append(b)
            need = -(-request.num_tokens // block_size) - len(hits)
            evictable_hits = sum(1 for b in hits if b.ref_cnt == 0)
            if need + evictable_hits > pool.get_num_free_blocks():
                continue
            pool.touch(hits)
            table = hits + pool.get_new_blocks(need)
            pool.cache_full_blocks(request, table, len(hits), len(hashes), block_size)
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


# --- your pool inside the real engine ----------------------------------------------------

SHARED = "You are a terse assistant. Answer: "
ENGINE_PROMPTS = [SHARED + q for q in ("2+2?", "capital of France?", "a haiku", "why is the sky blue?")]


def engine_trace(block_pool_cls):
    """Tokens, prefix hits and the step-by-step schedule of a run whose 16 usable blocks
    cannot hold four requests at once: prefix caching and preemption both happen."""
    llm = LLM(block_size=4, num_blocks=17, max_model_len=64, block_pool_cls=block_pool_cls)
    params = SamplingParams(temperature=0.0, max_tokens=24)
    outs = llm.generate(ENGINE_PROMPTS[:2], params) + llm.generate(ENGINE_PROMPTS[2:], params)
    engine = llm.llm_engine
    engine.engine_core.kv_cache_manager.block_pool.check_invariants()
    steps = [(s.num_scheduled_tokens, s.num_free_blocks, s.preempted_req_ids) for s in engine.step_stats]
    return [o.output_token_ids for o in outs], [o.num_cached_tokens for o in outs], steps


def test_the_engine_runs_on_your_pool_with_identical_output(lab):
    mine_tokens, mine_hits, mine_steps = engine_trace(lab.BlockPool)
    ref_tokens, ref_hits, ref_steps = engine_trace(None)
    assert any(preempted for _, _, preempted in ref_steps), "this workload must preempt"
    assert sum(ref_hits) > 0, "this workload must hit the prefix cache"
    assert mine_tokens == ref_tokens, "the engine on your BlockPool generated different tokens"
    assert mine_hits == ref_hits, "prefix-cache hits differ: check get_cached_block, touch and eviction (tasks 7, 8, 10)"
    for step, (mine, ref) in enumerate(zip(mine_steps, ref_steps)):
        assert mine == ref, f"step {step}: (scheduled tokens, free blocks, preempted) differ from the engine's pool"
    assert len(mine_steps) == len(ref_steps)
