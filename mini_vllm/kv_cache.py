"""KVCacheManager: per-request block tables on top of the BlockPool.

This is the only memory API the scheduler calls. ``allocate_slots`` returning None is
the out-of-memory signal the scheduler answers by preempting.

Upstream splits this over three layers (KVCacheManager -> KVCacheCoordinator ->
one SingleTypeKVCacheManager per attention type) so hybrid models can mix full,
sliding-window and mamba layers. mini_vllm has one full-attention group, so the three
collapse into this class; the methods keep upstream's names and arithmetic:
vllm/v1/core/kv_cache_manager.py:110@0decac0 (KVCacheManager) and
vllm/v1/core/single_type_kv_cache_manager.py:481@0decac0 (FullAttentionManager).
"""

from __future__ import annotations

from dataclasses import dataclass

from mini_vllm.block_pool import BlockPool, KVCacheBlock, get_request_block_hasher
from mini_vllm.config import check_bool, check_int
from mini_vllm.request import Request


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class PrefixCacheStats:
    """Cumulative lookups, counted in tokens like upstream's PrefixCacheStats."""

    requests: int = 0
    queries: int = 0
    hits: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


class KVCacheManager:
    def __init__(
        self,
        num_blocks: int,
        block_size: int,
        enable_caching: bool = True,
        max_model_len: int | None = None,
        block_pool: BlockPool | None = None,
    ) -> None:
        """``block_pool``: the pool to allocate from, e.g. a learner's own
        ``BlockPool(num_blocks, enable_caching)`` (phase 02 lab-01); by default the
        engine's. It must have ``num_blocks`` blocks and the same caching switch."""
        self.block_size = check_int("block_size", block_size)
        num_blocks = check_int("num_blocks", num_blocks, minimum=2)
        self.enable_caching = check_bool("enable_caching", enable_caching)
        self.max_model_len = None if max_model_len is None else check_int("max_model_len", max_model_len)
        if block_pool is None:
            block_pool = BlockPool(num_blocks, self.enable_caching)
        elif len(block_pool.blocks) != num_blocks or block_pool.enable_caching != self.enable_caching:
            raise ValueError(
                f"block_pool has {len(block_pool.blocks)} blocks, enable_caching={block_pool.enable_caching}; "
                f"the KV-cache manager was asked for {num_blocks} blocks, enable_caching={self.enable_caching}")
        self.block_pool = block_pool
        self.req_to_blocks: dict[str, list[KVCacheBlock]] = {}
        # Full blocks of each request already registered in the prefix cache.
        self.num_cached_block: dict[str, int] = {}
        self.prefix_cache_stats = PrefixCacheStats()
        self._hasher = get_request_block_hasher(block_size)

    @property
    def usage(self) -> float:
        return self.block_pool.get_usage()

    @property
    def num_free_blocks(self) -> int:
        return self.block_pool.get_num_free_blocks()

    def _ensure_hasher(self, request: Request) -> None:
        hasher = request.block_hasher
        if hasher is None:
            request.block_hasher = self._hasher
            request.update_block_hashes()
        elif getattr(hasher, "block_size", self.block_size) != self.block_size:
            raise ValueError(
                f"request {request.request_id} hashes blocks of {hasher.block_size} tokens, "
                f"this cache uses {self.block_size}"
            )

    def get_computed_blocks(self, request: Request) -> tuple[list[KVCacheBlock], int]:
        """Longest run of cached full blocks from the start of the request.

        The hit stops one token short of the end: the last token must be computed to get
        logits, so at most (num_tokens - 1) // block_size blocks are reused. When the
        whole prompt is cached that recomputes one full block, not one token.
        vllm/v1/core/kv_cache_manager.py:219@0decac0 ("max_cache_hit_length = request.num_tokens - 1").
        """
        if not self.enable_caching:
            return [], 0
        self._ensure_hasher(request)
        max_num_blocks = (request.num_tokens - 1) // self.block_size
        computed: list[KVCacheBlock] = []
        for block_hash in request.block_hashes[:max_num_blocks]:
            block = self.block_pool.get_cached_block(block_hash)
            if block is None:
                break  # chained hashes: nothing after a miss can hit
            computed.append(block)
        num_hit_tokens = len(computed) * self.block_size
        self.prefix_cache_stats.requests += 1
        self.prefix_cache_stats.queries += request.num_tokens
        self.prefix_cache_stats.hits += num_hit_tokens
        return computed, num_hit_tokens

    def get_num_blocks_to_allocate(
        self, request: Request, num_tokens: int, new_computed_blocks: list[KVCacheBlock]
    ) -> int:
        """Blocks the pool must supply. Hits with ref_cnt 0 count too: touching them
        takes them off the free queue.
        vllm/v1/core/single_type_kv_cache_manager.py:89@0decac0 (SingleTypeKVCacheManager.get_num_blocks_to_allocate)."""
        num_required = cdiv(num_tokens, self.block_size)
        num_held = len(self.req_to_blocks.get(request.request_id, ()))
        num_new = max(num_required - num_held - len(new_computed_blocks), 0)
        num_evictable = sum(1 for b in new_computed_blocks if b.ref_cnt == 0 and not b.is_null)
        return num_new + num_evictable

    def allocate_slots(
        self,
        request: Request,
        num_new_tokens: int,
        num_new_computed_tokens: int = 0,
        new_computed_blocks: list[KVCacheBlock] | None = None,
    ) -> list[KVCacheBlock] | None:
        """Give the request slots for ``num_computed_tokens + num_new_computed_tokens +
        num_new_tokens`` tokens; return the newly allocated blocks, or None (touching
        nothing) when the pool cannot supply them.

        On success the blocks that become full once this step's tokens are computed are
        registered in the prefix cache right away.
        vllm/v1/core/kv_cache_manager.py:236@0decac0 (KVCacheManager.allocate_slots).
        Upstream additionally handles lookahead (spec-decode) slots, externally loaded
        KV, sliding-window block recycling and an optional full-sequence admission check.
        """
        if num_new_tokens <= 0:
            raise ValueError(f"num_new_tokens must be > 0, got {num_new_tokens}")
        new_computed_blocks = list(new_computed_blocks or [])
        if len(new_computed_blocks) * self.block_size != num_new_computed_tokens:
            raise ValueError(
                f"num_new_computed_tokens={num_new_computed_tokens} does not match "
                f"{len(new_computed_blocks)} computed blocks of {self.block_size} tokens"
            )
        rid = request.request_id
        if new_computed_blocks and rid in self.req_to_blocks:
            raise ValueError(f"request {rid} already holds blocks; prefix hits apply only at admission")
        if self.enable_caching:
            self._ensure_hasher(request)

        num_computed = request.num_computed_tokens + num_new_computed_tokens
        num_tokens_need_slot = num_computed + num_new_tokens
        if self.max_model_len is not None:
            num_tokens_need_slot = min(num_tokens_need_slot, self.max_model_len)

        if self.get_num_blocks_to_allocate(request, num_tokens_need_slot, new_computed_blocks) > self.num_free_blocks:
            return None

        req_blocks = self.req_to_blocks.setdefault(rid, [])
        if new_computed_blocks:
            self.block_pool.touch(new_computed_blocks)
            req_blocks.extend(new_computed_blocks)
            self.num_cached_block[rid] = len(req_blocks)

        num_new_blocks = cdiv(num_tokens_need_slot, self.block_size) - len(req_blocks)
        new_blocks = self.block_pool.get_new_blocks(num_new_blocks) if num_new_blocks > 0 else []
        req_blocks.extend(new_blocks)

        if self.enable_caching:
            # Only tokens that exist are cached: never beyond request.num_tokens.
            self.cache_blocks(request, min(num_computed + num_new_tokens, request.num_tokens))
        return new_blocks

    def cache_blocks(self, request: Request, num_tokens: int) -> None:
        """vllm/v1/core/single_type_kv_cache_manager.py:278@0decac0 (SingleTypeKVCacheManager.cache_blocks)."""
        rid = request.request_id
        num_cached = self.num_cached_block.get(rid, 0)
        num_full = num_tokens // self.block_size
        if num_cached >= num_full:
            return
        self.block_pool.cache_full_blocks(request, self.req_to_blocks[rid], num_cached, num_full, self.block_size)
        self.num_cached_block[rid] = num_full

    def free(self, request: Request) -> None:
        """Release the request's blocks tail first: the tail is the least shareable
        part, so it should be evicted before the shared prefix.
        vllm/v1/core/single_type_kv_cache_manager.py:338@0decac0 (SingleTypeKVCacheManager.free)."""
        blocks = self.req_to_blocks.pop(request.request_id, [])
        self.block_pool.free_blocks(reversed(blocks))
        self.num_cached_block.pop(request.request_id, None)

    def get_blocks(self, request_id: str) -> list[KVCacheBlock]:
        return self.req_to_blocks.get(request_id, [])

    def get_block_ids(self, request_id: str) -> list[int]:
        """The request's block table. Upstream returns one list per KV-cache group
        (vllm/v1/core/kv_cache_manager.py:540@0decac0 (KVCacheManager.get_block_ids));
        mini_vllm has a single group, so a flat list."""
        return [b.block_id for b in self.req_to_blocks.get(request_id, [])]

    def reset_prefix_cache(self) -> bool:
        return self.block_pool.reset_prefix_cache()
