"""Lab 02-05 (your work): the life of a cached block, driven through mini_vllm's KVCacheManager.

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
    raise NotImplementedError("TODO 1: the most prompt tokens a cache hit may cover (README task 1)")


def prefill(kv: KVCacheManager, request: Request) -> int | None:
    """Admit ``request`` and compute its whole prompt in one step; return the number of
    prompt tokens served from the prefix cache, or None if the pool is too small
    (nothing changes then).

    Order matters: ``allocate_slots`` counts ``request.num_computed_tokens`` (still 0) plus
    the hit it is handed, so the counter moves only after the allocation succeeded.
    """
    raise NotImplementedError("TODO 2: admit a request and compute its prompt (README task 2)")


def decode_step(kv: KVCacheManager, request: Request, token_id: int) -> list[int] | None:
    """Append one sampled token and give it a slot; return the ids of blocks allocated for
    it ([] while the last block has room), or None if the pool is out of blocks.

    A block that this token fills is cached right away, so a later request whose prompt
    contains the generated text can hit it too.
    """
    raise NotImplementedError("TODO 3: append one token and give it a slot (README task 3)")


def ref_counts(kv: KVCacheManager, request_id: str) -> list[int]:
    """``ref_cnt`` of each block in the request's block table, in table order."""
    raise NotImplementedError("TODO 4: read the reference counts of a request's blocks (README task 4)")


def free_queue_ids(kv: KVCacheManager) -> list[int]:
    """Block ids in the free queue, next-to-evict first. This order *is* the eviction policy."""
    raise NotImplementedError("TODO 5: list the free queue in eviction order (README task 5)")


def cached_block_ids(kv: KVCacheManager) -> list[int]:
    """Sorted ids of every block that currently carries a hash (free or in use)."""
    raise NotImplementedError("TODO 6: list the blocks that carry a hash (README task 6)")
