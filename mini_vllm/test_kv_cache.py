"""KVCacheManager: prefix-hit cap, allocation arithmetic, OOM signal, reverse-order free."""

import pytest

from mini_vllm.kv_cache import KVCacheManager
from mini_vllm.request import Request
from mini_vllm.sampler import SamplingParams


def req(rid, tokens):
    return Request(rid, tokens, SamplingParams(max_tokens=4))


def test_cache_hit_is_capped_so_the_last_token_is_recomputed():
    kv = KVCacheManager(num_blocks=16, block_size=16)
    a = req("a", list(range(64)))
    kv.allocate_slots(a, 64)
    hit, n = kv.get_computed_blocks(req("b", list(range(64))))
    assert n == 48 and len(hit) == 3, "64 cached tokens, but (64 - 1) // 16 = 3 blocks may be reused"


def test_cache_hit_stops_at_first_miss():
    kv = KVCacheManager(num_blocks=16, block_size=4)
    kv.allocate_slots(req("a", list(range(12))), 12)
    b = req("b", [0, 1, 2, 3, 9, 9, 9, 9, 8, 9, 10, 11, 5])
    hit, n = kv.get_computed_blocks(b)
    assert n == 4, "block 3 matches a's tokens 8..11, but its parent differs, so the chain stops at block 2"


def test_no_hits_when_caching_is_disabled():
    kv = KVCacheManager(num_blocks=16, block_size=4, enable_caching=False)
    kv.allocate_slots(req("a", list(range(12))), 12)
    assert kv.get_computed_blocks(req("b", list(range(12)))) == ([], 0)
    assert kv.block_pool.cached_block_hash_to_block == {}


def test_allocate_slots_returns_none_and_changes_nothing_when_out_of_blocks():
    kv = KVCacheManager(num_blocks=4, block_size=4)
    kv.allocate_slots(req("a", list(range(8))), 8)
    b = req("b", list(range(100, 108)))
    assert kv.allocate_slots(b, 8) is None
    assert kv.num_free_blocks == 1 and kv.get_block_ids("b") == []
    kv.block_pool.check_invariants()


def test_evictable_prefix_hits_count_against_free_blocks():
    kv = KVCacheManager(num_blocks=4, block_size=4)
    a = req("a", list(range(9)))
    kv.allocate_slots(a, 9)
    kv.free(a)
    b = req("b", list(range(8)) + [50, 51, 52, 53, 54])
    hit, n = kv.get_computed_blocks(b)
    assert n == 8
    # b needs 4 blocks: 2 revived hits (taken off the free queue) + 2 new; only 3 usable.
    assert kv.allocate_slots(b, 5, n, hit) is None
    assert kv.allocate_slots(b, 4, n, hit) is not None and kv.num_free_blocks == 0


def test_chunks_grow_the_table_one_block_at_a_time():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    r = req("r", list(range(10)))
    assert [b.block_id for b in kv.allocate_slots(r, 5)] == [1, 2]
    r.num_computed_tokens = 5
    assert [b.block_id for b in kv.allocate_slots(r, 3)] == []
    r.num_computed_tokens = 8
    assert [b.block_id for b in kv.allocate_slots(r, 2)] == [3]
    assert kv.get_block_ids("r") == [1, 2, 3]


def test_free_releases_tail_first():
    kv = KVCacheManager(num_blocks=5, block_size=2)
    r = req("r", list(range(8)))
    kv.allocate_slots(r, 8)
    kv.free(r)
    order = [b.block_id for b in kv.block_pool.free_block_queue.get_all_free_blocks()]
    assert order == [4, 3, 2, 1], "the tail block is evicted first, the shared head last"


def test_prefix_cache_stats_count_tokens():
    kv = KVCacheManager(num_blocks=16, block_size=4)
    kv.allocate_slots(req("a", list(range(12))), 12)
    kv.get_computed_blocks(req("b", list(range(12))))
    assert (kv.prefix_cache_stats.queries, kv.prefix_cache_stats.hits) == (12, 8)


def test_bad_arguments_raise():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    r = req("r", [1, 2, 3])
    with pytest.raises(ValueError, match="num_new_tokens"):
        kv.allocate_slots(r, 0)
    with pytest.raises(ValueError, match="does not match"):
        kv.allocate_slots(r, 1, num_new_computed_tokens=4)
    with pytest.raises(ValueError, match="block_size"):
        KVCacheManager(num_blocks=8, block_size=0)


def test_slots_are_capped_at_max_model_len():
    # Upstream caps the slots a step may ask for at max_model_len (it binds with
    # speculative lookahead); asking past it allocates only up to the cap.
    kv = KVCacheManager(num_blocks=16, block_size=4, max_model_len=8)
    a = req("a", list(range(6)))
    new = kv.allocate_slots(a, 10)
    assert len(new) == 2, "8 tokens of max_model_len need 2 blocks of 4, not cdiv(10, 4) = 3"
