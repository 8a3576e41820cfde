"""Spec for lab 02-05: sharing, ref counts, eviction order and revival, with exact block ids.

Block size 4 and a 32-token prompt (8 full blocks) throughout. A fresh pool hands out
blocks from the front of its free queue, ids 1, 2, 3, ... (block 0 is the null block).
"""
import pytest

from mini_vllm.kv_cache import KVCacheManager
from mini_vllm.request import Request
from mini_vllm.sampler import SamplingParams

BS = 4
PROMPT = list(range(100, 132))


def req(rid, tokens):
    return Request(rid, list(tokens), SamplingParams(max_tokens=8))


def table(kv, rid):
    return kv.get_block_ids(rid)


def test_hit_cap_leaves_the_last_token_to_compute(lab):
    assert lab.max_hit_tokens(32, BS) == 28, "task 1: 32 cached tokens would leave nothing to produce logits"
    assert lab.max_hit_tokens(33, BS) == 32
    assert [lab.max_hit_tokens(n, BS) for n in (1, 4, 5)] == [0, 0, 4]


def test_first_request_populates_a_cold_cache(lab):
    kv = KVCacheManager(20, BS)
    a = req("A", PROMPT)
    assert lab.prefill(kv, a) == 0, "task 2: nothing is cached yet"
    assert table(kv, "A") == [1, 2, 3, 4, 5, 6, 7, 8]
    assert lab.ref_counts(kv, "A") == [1] * 8, "task 4"
    assert a.num_computed_tokens == 32, "task 2: the whole prompt was computed this step"
    assert lab.cached_block_ids(kv) == [1, 2, 3, 4, 5, 6, 7, 8], "task 6: full blocks are cached on allocation"
    assert lab.free_queue_ids(kv) == list(range(9, 20)), "task 5"


def test_identical_prompt_shares_all_but_the_tail_block(lab):
    kv = KVCacheManager(20, BS)
    lab.prefill(kv, req("A", PROMPT))
    assert lab.prefill(kv, req("B", PROMPT)) == 28, "7 blocks hit; the 8th holds the token that must run"
    assert table(kv, "B") == [1, 2, 3, 4, 5, 6, 7, 9]
    assert lab.ref_counts(kv, "B") == [2] * 7 + [1]
    assert lab.ref_counts(kv, "A") == [2] * 7 + [1]
    assert lab.cached_block_ids(kv) == list(range(1, 10)), "blocks 8 and 9 hold equal content; both stay (I2)"


def test_diverging_prompt_shares_only_the_common_prefix(lab):
    kv = KVCacheManager(20, BS)
    lab.prefill(kv, req("A", PROMPT))
    assert lab.prefill(kv, req("C", PROMPT[:16] + list(range(500, 516)))) == 16
    assert table(kv, "C") == [1, 2, 3, 4, 9, 10, 11, 12]
    assert lab.ref_counts(kv, "C") == [2, 2, 2, 2, 1, 1, 1, 1]


def test_free_order_evicts_the_tails_before_the_shared_prefix(lab):
    kv = KVCacheManager(10, BS)  # null + A's 8 blocks + B's tail: every block in use
    a, b = req("A", PROMPT), req("B", PROMPT)
    lab.prefill(kv, a)
    lab.prefill(kv, b)
    assert kv.num_free_blocks == 0
    kv.free(a)
    assert lab.free_queue_ids(kv) == [8], "blocks 1-7 are still held by B"
    kv.free(b)
    assert lab.free_queue_ids(kv) == [8, 9, 7, 6, 5, 4, 3, 2, 1], "each request frees its tail first"
    assert lab.cached_block_ids(kv) == list(range(1, 10)), "freed blocks keep their hashes (I4)"
    assert lab.prefill(kv, req("E", range(900, 908))) == 0
    assert table(kv, "E") == [8, 9], "pressure evicts the two private tails first"
    assert lab.cached_block_ids(kv) == [1, 2, 3, 4, 5, 6, 7, 8, 9], "E's new full blocks are cached in their place"
    assert lab.prefill(kv, req("F", PROMPT)) is None, "F needs 1 new block and none is free"


def test_shared_prefix_survives_pressure_and_still_hits(lab):
    kv = KVCacheManager(10, BS)
    a, b, e = req("A", PROMPT), req("B", PROMPT), req("E", range(900, 908))
    for r in (a, b):
        lab.prefill(kv, r)
    kv.free(a)
    kv.free(b)
    lab.prefill(kv, e)
    kv.free(e)
    assert lab.prefill(kv, req("G", PROMPT)) == 28, "blocks 1-7 were never evicted"
    assert table(kv, "G")[:7] == [1, 2, 3, 4, 5, 6, 7]


def test_cached_free_blocks_are_revived_not_recomputed(lab):
    kv = KVCacheManager(20, BS)
    a = req("A", PROMPT)
    lab.prefill(kv, a)
    kv.free(a)
    assert lab.free_queue_ids(kv) == list(range(9, 20)) + [8, 7, 6, 5, 4, 3, 2, 1]
    assert lab.prefill(kv, req("D", PROMPT)) == 28, "nobody holds the blocks, the cache still does"
    assert table(kv, "D") == [1, 2, 3, 4, 5, 6, 7, 9]
    assert lab.ref_counts(kv, "D") == [1] * 8
    assert lab.free_queue_ids(kv) == list(range(10, 20)) + [8], "touch took 7 blocks out of the middle"


def test_caching_disabled_means_no_sharing(lab):
    kv = KVCacheManager(20, BS, enable_caching=False)
    lab.prefill(kv, req("A", PROMPT))
    assert lab.prefill(kv, req("B", PROMPT)) == 0
    assert table(kv, "B") == [9, 10, 11, 12, 13, 14, 15, 16]
    assert lab.cached_block_ids(kv) == []


def test_decoded_tokens_fill_blocks_that_later_requests_hit(lab):
    kv = KVCacheManager(20, BS)
    a = req("A", PROMPT[:31])
    lab.prefill(kv, a)
    assert lab.cached_block_ids(kv) == [1, 2, 3, 4, 5, 6, 7], "block 8 holds 3 tokens: not cached (I3)"
    assert lab.decode_step(kv, a, 7) == [], "task 3: the 32nd token fits in block 8"
    assert lab.cached_block_ids(kv) == [1, 2, 3, 4, 5, 6, 7, 8], "block 8 just filled: cached"
    assert lab.decode_step(kv, a, 7) == [9], "the 33rd token needs a new block"
    assert a.num_computed_tokens == 33
    follower = req("H", PROMPT[:31] + [7, 7, 1])
    assert lab.prefill(kv, follower) == 32, "the generated token is part of a cached block now"


def test_prefill_that_does_not_fit_changes_nothing(lab):
    kv = KVCacheManager(5, BS)
    r = req("A", PROMPT)
    assert lab.prefill(kv, r) is None, "task 2: 8 blocks needed, 4 usable"
    assert r.num_computed_tokens == 0, "task 2: move the counter only after allocate_slots succeeds"
    assert lab.free_queue_ids(kv) == [1, 2, 3, 4] and table(kv, "A") == []


@pytest.mark.parametrize("n_requests", [1, 2, 5])
def test_n_identical_requests_cost_one_prompt_plus_a_tail_each(lab, n_requests):
    kv = KVCacheManager(40, BS)
    for i in range(n_requests):
        lab.prefill(kv, req(f"R{i}", PROMPT))
    assert 39 - kv.num_free_blocks == 8 + (n_requests - 1), "7 shared blocks + one private tail per request"
    assert lab.ref_counts(kv, "R0") == [n_requests] * 7 + [1]


def test_eight_identical_prompts_hit_196_of_256_tokens(lab):
    kv = KVCacheManager(40, BS)
    hits = [lab.prefill(kv, req(f"R{i}", PROMPT)) for i in range(8)]
    assert hits == [0] + [28] * 7, "the first request pays in full; each later one recomputes its last block"
    stats = kv.prefix_cache_stats
    assert (stats.queries, stats.hits) == (256, 196)
    assert stats.hit_rate == 0.765625, "hit rate counts tokens: 196 / 256, not 7 of 8 requests"


def test_freeing_head_first_would_evict_the_prefix_and_break_the_chain(lab):
    """The counterfactual behind reverse-order free: release A and B head first (by hand,
    bypassing KVCacheManager.free) and the shared block 1 is near the front of the queue."""
    kv = KVCacheManager(10, BS)
    lab.prefill(kv, req("A", PROMPT))
    lab.prefill(kv, req("B", PROMPT))
    for rid in ("A", "B"):
        kv.num_cached_block.pop(rid)
        kv.block_pool.free_blocks(kv.req_to_blocks.pop(rid))  # forward order
    assert lab.free_queue_ids(kv) == [8, 1, 2, 3, 4, 5, 6, 7, 9]
    e = req("E", range(900, 908))
    lab.prefill(kv, e)
    assert table(kv, "E") == [8, 1], "the first shared block is evicted second"
    kv.free(e)
    assert lab.prefill(kv, req("G", PROMPT)) == 0, (
        "blocks 2-7 are still cached, but without block 1 no lookup gets past the first hash"
    )
