"""BlockPool, FreeKVCacheBlockQueue and the block hash: invariants I1-I4 (block_pool.py)."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mini_vllm.block_pool import (
    NONE_HASH,
    BlockPool,
    FreeKVCacheBlockQueue,
    KVCacheBlock,
    get_request_block_hasher,
    hash_block_tokens,
)
from mini_vllm.kv_cache import KVCacheManager
from mini_vllm.request import Request
from mini_vllm.sampler import SamplingParams


def ids(blocks):
    return [b.block_id for b in blocks]


def make_request(rid, tokens, block_size):
    return Request(rid, tokens, SamplingParams(max_tokens=4), block_hasher=get_request_block_hasher(block_size))


# --- FreeKVCacheBlockQueue -------------------------------------------------------------

def test_free_queue_starts_in_block_id_order():
    q = FreeKVCacheBlockQueue([KVCacheBlock(i) for i in range(5)])
    assert ids(q.get_all_free_blocks()) == [0, 1, 2, 3, 4]
    assert q.num_free_blocks == 5


def test_free_queue_o1_middle_removal_keeps_the_rest_in_order():
    blocks = [KVCacheBlock(i) for i in range(5)]
    q = FreeKVCacheBlockQueue(blocks)
    q.remove(blocks[2])
    assert ids(q.get_all_free_blocks()) == [0, 1, 3, 4]
    assert q.num_free_blocks == 4
    assert blocks[2].prev_free_block is None and blocks[2].next_free_block is None, "removed block keeps no links"


def test_free_queue_popleft_and_append_work_at_opposite_ends():
    blocks = [KVCacheBlock(i) for i in range(4)]
    q = FreeKVCacheBlockQueue(blocks)
    first = q.popleft()
    assert first.block_id == 0
    q.append(first)
    assert ids(q.get_all_free_blocks()) == [1, 2, 3, 0]
    assert ids(q.popleft_n(2)) == [1, 2]
    q.append_n([blocks[2], blocks[1]])
    assert ids(q.get_all_free_blocks()) == [3, 0, 2, 1]


def test_free_queue_empty_popleft_raises_and_sentinels_never_leak():
    q = FreeKVCacheBlockQueue([KVCacheBlock(0)])
    q.popleft()
    with pytest.raises(ValueError, match="No free blocks"):
        q.popleft()
    assert q.get_all_free_blocks() == [] and q.num_free_blocks == 0


def test_free_queue_rejects_removing_a_block_that_is_not_free():
    q = FreeKVCacheBlockQueue([KVCacheBlock(i) for i in range(3)])
    taken = q.popleft()
    with pytest.raises(RuntimeError):
        q.remove(taken)


# --- hashing -----------------------------------------------------------------------------

def test_prefix_hash_is_chained():
    h_ab = hash_block_tokens(None, [1, 2])
    h_xy = hash_block_tokens(None, [7, 8])
    assert hash_block_tokens(h_ab, [3, 4]) != hash_block_tokens(h_xy, [3, 4]), "parent must be part of the hash"
    assert hash_block_tokens(None, [1, 2]) == hash_block_tokens(NONE_HASH, [1, 2])


def test_block_hash_is_the_same_in_every_process():
    # A fixed value: the hash is SHA-256 over fixed bytes, never Python's salted hash().
    assert hash_block_tokens(None, [1, 2, 3]).hex()[:16] == "fb07afff951052fa"


def test_request_hashes_only_full_blocks_and_extends_as_tokens_arrive():
    r = make_request("r", [1, 2, 3, 4, 5, 6], block_size=4)
    assert len(r.block_hashes) == 1
    r.append_output_token_ids([7, 8])
    assert r.block_hashes == [hash_block_tokens(None, [1, 2, 3, 4]), hash_block_tokens(r.block_hashes[0], [5, 6, 7, 8])]


# --- BlockPool ----------------------------------------------------------------------------

def test_block_pool_reserves_null_block():
    pool = BlockPool(8)
    assert pool.null_block.block_id == 0 and pool.null_block.is_null
    assert pool.get_num_free_blocks() == 7, "block 0 is never counted as free"
    assert ids(pool.get_new_blocks(7)) == [1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="Cannot get 1 free blocks"):
        pool.get_new_blocks(1)


def test_allocate_free_round_trip_keeps_I1():
    pool = BlockPool(6)
    blocks = pool.get_new_blocks(3)
    assert [b.ref_cnt for b in blocks] == [1, 1, 1]
    pool.check_invariants()
    pool.free_blocks(reversed(blocks))
    assert ids(pool.free_block_queue.get_all_free_blocks()) == [4, 5, 3, 2, 1], "freed blocks go to the tail, in the order given"
    pool.check_invariants()


def test_shared_block_returns_to_free_queue_only_at_ref_cnt_zero():
    pool = BlockPool(4)
    (block,) = pool.get_new_blocks(1)
    pool.touch([block])
    pool.free_blocks([block])
    assert block.ref_cnt == 1 and pool.get_num_free_blocks() == 2
    pool.free_blocks([block])
    assert pool.get_num_free_blocks() == 3
    pool.check_invariants()


def test_double_free_is_caught():
    pool = BlockPool(4)
    (block,) = pool.get_new_blocks(1)
    pool.free_blocks([block])
    with pytest.raises(AssertionError, match="double free"):
        pool.free_blocks([block])


def test_partial_blocks_are_never_cached_I3():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    r = make_request("r", [1, 2, 3, 4, 5, 6], 4)
    blocks = kv.allocate_slots(r, 6)
    assert [b.block_hash is not None for b in blocks] == [True, False]
    assert len(kv.block_pool.cached_block_hash_to_block) == 1


def test_identical_content_is_not_deduplicated_I2():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    a, b = make_request("a", [1, 2, 3, 4, 9], 4), make_request("b", [1, 2, 3, 4, 9], 4)
    kv.allocate_slots(a, 5)
    kv.allocate_slots(b, 5)  # b skipped the lookup: it writes the same tokens into its own block
    assert kv.get_block_ids("a") == [1, 2] and kv.get_block_ids("b") == [3, 4]
    entries = kv.block_pool.cached_block_hash_to_block[a.block_hashes[0]]
    assert sorted(entries) == [1, 3], "both copies stay indexed; neither block id changes"
    assert kv.block_pool.get_cached_block(a.block_hashes[0]).block_id == 1, "lookups return the first one cached"


def test_free_cached_block_is_revived_from_the_middle_by_touch_I4():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    a = make_request("a", [1, 2, 3, 4, 5, 6, 7, 8, 9], 4)
    kv.allocate_slots(a, 9)
    kv.free(a)
    pool = kv.block_pool
    assert ids(pool.free_block_queue.get_all_free_blocks()) == [4, 5, 6, 7, 3, 2, 1]
    b = make_request("b", [1, 2, 3, 4, 5, 6, 7, 8, 0, 0], 4)
    hit, n = kv.get_computed_blocks(b)
    assert ids(hit) == [1, 2] and n == 8
    kv.allocate_slots(b, 2, n, hit)
    assert ids(pool.free_block_queue.get_all_free_blocks()) == [5, 6, 7, 3], "1 and 2 left the middle; 4 was popped"
    assert [blk.ref_cnt for blk in hit] == [1, 1]
    pool.check_invariants()


def test_reusing_a_cached_free_block_evicts_its_cache_entry():
    kv = KVCacheManager(num_blocks=3, block_size=2)
    a = make_request("a", [1, 2, 3], 2)
    kv.allocate_slots(a, 3)
    kv.free(a)
    h = a.block_hashes[0]
    assert kv.block_pool.get_cached_block(h) is not None, "a free block keeps its hash (I4)"
    kv.allocate_slots(make_request("b", [7, 7, 7, 7], 2), 4)  # needs both blocks
    assert kv.block_pool.get_cached_block(h) is None
    assert all(b.block_hash is None or b.block_hash != h for b in kv.block_pool.blocks)
    kv.block_pool.check_invariants()


def test_usage_excludes_the_null_block():
    pool = BlockPool(5)
    pool.get_new_blocks(2)
    assert pool.get_usage() == 0.5


# --- stateful fuzz -------------------------------------------------------------------------

class BlockPoolMachine(RuleBasedStateMachine):
    """Random admissions (with prefix-cache lookups), decode appends and frees over a
    small pool and a 3-token alphabet so prefixes collide often. After every step: the
    invariants hold, no block is lost, every ref is accounted for, and no block table
    ever changes except by appending (I2)."""

    @initialize(caching=st.booleans(), block_size=st.sampled_from([1, 2, 4]))
    def setup(self, caching, block_size):
        self.kv = KVCacheManager(num_blocks=12, block_size=block_size, enable_caching=caching)
        self.live: dict[str, Request] = {}
        self.tables: dict[str, list[int]] = {}
        self.next_id = 0

    @rule(tokens=st.lists(st.integers(0, 2), min_size=1, max_size=12))
    def admit(self, tokens):
        r = Request(str(self.next_id), tokens, SamplingParams(max_tokens=8))
        self.next_id += 1
        hit, n = self.kv.get_computed_blocks(r)
        assert n <= r.num_tokens - 1 and n % self.kv.block_size == 0
        free_before = self.kv.num_free_blocks
        if self.kv.allocate_slots(r, r.num_tokens - n, n, hit) is None:
            assert self.kv.num_free_blocks == free_before, "a failed allocation must not change anything"
            return
        r.num_computed_tokens = r.num_tokens
        self.live[r.request_id] = r
        self.tables[r.request_id] = self.kv.get_block_ids(r.request_id)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), token=st.integers(0, 2))
    def decode(self, data, token):
        r = self.live[data.draw(st.sampled_from(sorted(self.live)))]
        r.append_output_token_ids(token)
        if self.kv.allocate_slots(r, 1) is not None:
            r.num_computed_tokens += 1
        else:  # out of blocks: preempt it, as the scheduler would
            self.kv.free(self.live.pop(r.request_id))
            del self.tables[r.request_id]

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        rid = data.draw(st.sampled_from(sorted(self.live)))
        self.kv.free(self.live.pop(rid))
        del self.tables[rid]

    @invariant()
    def invariants_hold_and_no_block_is_lost(self):
        self.kv.block_pool.check_invariants()
        held: dict[int, int] = {}
        for rid in self.live:
            table = self.kv.get_block_ids(rid)
            assert table[: len(self.tables[rid])] == self.tables[rid], "I2: block table changed under a request"
            self.tables[rid] = table
            for b in table:
                held[b] = held.get(b, 0) + 1
        pool = self.kv.block_pool
        assert all(pool.blocks[b].ref_cnt == n for b, n in held.items()), "ref_cnt != number of holders"
        assert pool.get_num_free_blocks() + len(held) == pool.num_blocks - 1, "a block was lost"


BlockPoolMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestBlockPoolStateMachine = BlockPoolMachine.TestCase


def test_reset_prefix_cache_is_refused_while_a_block_is_in_use():
    pool = BlockPool(6)
    req_ = Request("a", [1, 2, 3, 4], SamplingParams(max_tokens=1), block_hasher=get_request_block_hasher(4))
    (block,) = pool.get_new_blocks(1)
    pool.cache_full_blocks(req_, [block], 0, 1, 4)
    assert pool.reset_prefix_cache() is False, "a block is in use: upstream refuses to reset"
    assert block.block_hash is not None and pool.get_cached_block(block.block_hash) is block
    pool.free_blocks([block])
    assert pool.reset_prefix_cache() is True and block.block_hash is None
