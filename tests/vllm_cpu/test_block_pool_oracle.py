"""mini_vllm's BlockPool against vLLM 0.22.1's, on random sequences of operations.

Each drawn program allocates, frees (tail first, as a KV manager does), registers full
blocks in the prefix cache, looks prompts up and touches the hits, and resets the cache,
on both pools at once. After every operation the two must agree on the block ids it
returned, the free queue front to back, every block's ref count and hash presence, and
the number of free blocks. The hashes themselves differ (vLLM uses sha256 over its own
encoding); only which blocks hold one matters.

``UPSTREAM_IMPL=path/to/file.py`` runs the test against the ``BlockPool`` in that file
(a lab's starter or solution) instead of mini_vllm's.
"""
from __future__ import annotations

import inspect
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mini_vllm import BlockPool, Request, SamplingParams, get_request_block_hasher
from mini_vllm.config import load_module_from_path

pytestmark = pytest.mark.upstream

BLOCK_SIZE = 2
PROMPTS = [[p * 10 + (i % 3) for i in range(12)] for p in range(3)]  # 3 prompts, 6 blocks each
PROGRAMS = int(os.environ.get("UPSTREAM_BLOCK_POOL_PROGRAMS", "300"))


def mini_block_pool_cls():
    path = os.environ.get("UPSTREAM_IMPL")
    return load_module_from_path(path).BlockPool if path else BlockPool


ops = st.lists(st.one_of(
    st.tuples(st.just("alloc"), st.integers(1, 4), st.integers(0, len(PROMPTS) - 1)),
    st.tuples(st.just("free"), st.integers(0, 50)),
    st.tuples(st.just("cache"), st.integers(0, 50)),
    st.tuples(st.just("lookup"), st.integers(0, len(PROMPTS) - 1)),
    st.tuples(st.just("reset")),
), max_size=40)


def state(pool):
    free = [b.block_id for b in pool.free_block_queue.get_all_free_blocks()]
    blocks = [(b.block_id, b.ref_cnt, b.block_hash is not None) for b in pool.blocks]
    return {"free_queue": free, "blocks": blocks, "num_free": pool.get_num_free_blocks()}


@settings(max_examples=PROGRAMS, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(num_blocks=st.integers(2, 12), caching=st.booleans(), program=ops)
def test_block_pool_matches_vllm_operation_by_operation(vllm_oracle, num_blocks, caching, program):
    from vllm.v1.core.block_pool import BlockPool as UpstreamBlockPool

    mini = mini_block_pool_cls()(num_blocks, caching)
    up = UpstreamBlockPool(num_blocks, caching, hash_block_size=BLOCK_SIZE)
    hasher = get_request_block_hasher(BLOCK_SIZE)
    live = []  # (mini blocks, upstream blocks, prompt id, cached)
    log = []
    for n_op, op in enumerate(program):
        kind = op[0]
        result_mini = result_up = None
        if kind == "alloc":
            n = op[1]
            if n > mini.get_num_free_blocks():
                continue
            bm, bu = mini.get_new_blocks(n), up.get_new_blocks(n)
            live.append([bm, bu, op[2], False])
            result_mini, result_up = [b.block_id for b in bm], [b.block_id for b in bu]
        elif kind in ("free", "cache") and live:
            entry = live[op[1] % len(live)]
            bm, bu, pid, cached = entry
            if kind == "free":
                live.remove(entry)
                mini.free_blocks(reversed(bm))
                up.free_blocks(reversed(bu))
            elif caching and not cached:
                tokens = PROMPTS[pid][:len(bm) * BLOCK_SIZE]
                rid = f"c{n_op}"
                rm = Request(rid, tokens, SamplingParams(max_tokens=1, ignore_eos=True))
                rm.block_hasher = hasher
                rm.update_block_hashes()
                ru = vllm_oracle.upstream_request(rid, tokens, 1, BLOCK_SIZE)
                if next(iter(inspect.signature(mini.cache_full_blocks).parameters)) == "request":
                    mini.cache_full_blocks(rm, bm, 0, len(bm), BLOCK_SIZE)
                else:  # phase-02 lab-01 takes the hashes, not the request
                    mini.cache_full_blocks(bm, rm.block_hashes, 0, len(bm))
                up.cache_full_blocks(ru, bu, 0, len(bu), BLOCK_SIZE, 0)
                entry[3] = True
        elif kind == "lookup" and caching:
            tokens = PROMPTS[op[1]]
            rm = Request(f"l{n_op}", tokens, SamplingParams(max_tokens=1, ignore_eos=True))
            rm.block_hasher = hasher
            rm.update_block_hashes()
            ru = vllm_oracle.upstream_request(f"l{n_op}", tokens, 1, BLOCK_SIZE)
            hits_m, hits_u = [], []
            for hm in rm.block_hashes:
                block = mini.get_cached_block(hm)
                if block is None:
                    break
                hits_m.append(block)
            for hu in ru.block_hashes:
                blocks = up.get_cached_block(hu, [0])
                if blocks is None:
                    break
                hits_u.append(blocks[0])
            result_mini, result_up = [b.block_id for b in hits_m], [b.block_id for b in hits_u]
            if hits_m and len(hits_m) == len(hits_u):
                mini.touch(hits_m)
                up.touch(hits_u)
                live.append([hits_m, hits_u, op[1], True])
        elif kind == "reset":
            if not hasattr(mini, "reset_prefix_cache"):
                continue  # a lab's pool may stop short of it
            result_mini, result_up = mini.reset_prefix_cache(), up.reset_prefix_cache()
        log.append(op)
        assert result_mini == result_up, f"after {log}: mini_vllm returned {result_mini}, vLLM {result_up}"
        sm, su = state(mini), state(up)
        assert sm == su, f"after {log}:\n  mini_vllm: {sm}\n  vLLM 0.22.1: {su}"


@settings(max_examples=PROGRAMS, derandomize=True, database=None, deadline=None)
@given(block_size=st.integers(1, 4),
       prompts=st.lists(st.lists(st.integers(0, 2), max_size=12), min_size=1, max_size=5))
def test_block_hashes_identify_the_same_blocks_as_vllm(vllm_oracle, block_size, prompts):
    """The hash values differ (vLLM: sha256 of its own encoding); what must agree is how
    many full blocks get a hash and which blocks, across all prompts, share one: the
    chain makes a block's hash depend on every token before it, not only its own."""
    hasher = get_request_block_hasher(block_size)
    mini_hashes, up_hashes = [], []
    for i, tokens in enumerate(prompts):
        if not tokens:
            continue
        rm = Request(f"h{i}", tokens, SamplingParams(max_tokens=1, ignore_eos=True))
        rm.block_hasher = hasher
        rm.update_block_hashes()
        ru = vllm_oracle.upstream_request(f"h{i}", tokens, 1, block_size)
        assert len(rm.block_hashes) == len(ru.block_hashes) == len(tokens) // block_size
        mini_hashes += [(i, k, h) for k, h in enumerate(rm.block_hashes)]
        up_hashes += [(i, k, h) for k, h in enumerate(ru.block_hashes)]
    for (i, k, hm), (_, _, hu) in zip(mini_hashes, up_hashes):
        for (j, m, hm2), (_, _, hu2) in zip(mini_hashes, up_hashes):
            assert (hm == hm2) == (hu == hu2), (
                f"prompt {i} block {k} vs prompt {j} block {m}: mini_vllm equal={hm == hm2}, vLLM equal={hu == hu2}")
