"""Lab 02-05 (reference): the life of a cached block, driven through mini_vllm's KVCacheManager.

No scheduler and no model here: you make the calls the scheduler makes when it admits a
request and when it decodes one token, and you read the block pool's state after each.

Upstream, admission is vllm/v1/core/sched/scheduler.py:594@0decac0 ("self.kv_cache_manager.get_computed_blocks(request)")
followed by ``allocate_slots`` with the hit blocks; the manager's side is
vllm/v1/core/kv_cache_manager.py:194@0decac0 (KVCacheManager.get_computed_blocks).
"""
from __future__ import annotations

from mini_vllm.kv_cache import KVCacheManager
from mini_vllm.request import Request


def max_hit_tokens(num_tokens: int, block_size: int) -> int:
    """The most prompt tokens a prefix-cache hit may cover.

    The last token must run through the model (its logits pick the next token), and hits
    come in whole blocks, so: the full blocks among the first ``num_tokens - 1`` tokens.
    vllm/v1/core/kv_cache_manager.py:219@0decac0 ("max_cache_hit_length = request.num_tokens - 1").
    """
    return (num_tokens - 1) // block_size * block_size


def prefill(kv: KVCacheManager, request: Request) -> int | None:
    """Admit ``request`` and compute its whole prompt in one step; return the number of
    prompt tokens served from the prefix cache, or None if the pool is too small
    (nothing changes then).

    Order matters: ``allocate_slots`` counts ``request.num_computed_tokens`` (still 0) plus
    the hit it is handed, so the counter moves only after the allocation succeeded.
    """
    hit_blocks, num_hit_tokens = kv.get_computed_blocks(request)
    num_new_tokens = request.num_tokens - num_hit_tokens
    if kv.allocate_slots(request, num_new_tokens, num_hit_tokens, hit_blocks) is None:
        return None
    request.num_computed_tokens = request.num_tokens
    return num_hit_tokens


def decode_step(kv: KVCacheManager, request: Request, token_id: int) -> list[int] | None:
    """Append one sampled token and give it a slot; return the ids of blocks allocated for
    it ([] while the last block has room), or None if the pool is out of blocks.

    A block that this token fills is cached right away, so a later request whose prompt
    contains the generated text can hit it too.
    """
    request.append_output_token_ids(token_id)
    new_blocks = kv.allocate_slots(request, 1)
    if new_blocks is None:
        return None
    request.num_computed_tokens += 1
    return [b.block_id for b in new_blocks]


def ref_counts(kv: KVCacheManager, request_id: str) -> list[int]:
    """``ref_cnt`` of each block in the request's block table, in table order."""
    return [b.ref_cnt for b in kv.get_blocks(request_id)]


def free_queue_ids(kv: KVCacheManager) -> list[int]:
    """Block ids in the free queue, next-to-evict first. This order *is* the eviction policy."""
    return [b.block_id for b in kv.block_pool.free_block_queue.get_all_free_blocks()]


def cached_block_ids(kv: KVCacheManager) -> list[int]:
    """Sorted ids of every block that currently carries a hash (free or in use)."""
    return sorted(b.block_id for b in kv.block_pool.blocks if b.block_hash is not None)
