"""Lab 02-01 (your work): the paged KV-cache block allocator.

Two classes and two hash functions, named and shaped as upstream's, so this file's
``BlockPool`` can replace the engine's (``LLM(block_pool_cls=...)``):

- ``FreeKVCacheBlockQueue``: the free list in eviction order, a doubly linked list threaded
  through the blocks themselves (vllm/v1/core/kv_cache_utils.py:164@0decac0 (FreeKVCacheBlockQueue));
- ``hash_block_tokens`` / ``get_request_block_hasher``: the chained prefix hash
  (vllm/v1/core/kv_cache_utils.py:541@0decac0 (hash_block_tokens));
- ``BlockPool``: all blocks, the free queue, and the hash -> block prefix-cache index
  (vllm/v1/core/block_pool.py:130@0decac0 (BlockPool)).

``KVCacheBlock`` (one block's metadata) is given: it is the engine's own class.
Work through the TODOs in number order; README.md says which tests each one turns green.
The K/V numbers themselves never appear here: a block id is an index into the model's
cache arrays, and everything this file does is bookkeeping about who may read or
overwrite which index.
"""
from __future__ import annotations

import hashlib  # noqa: F401  (task 5)
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np  # noqa: F401  (task 5)

from mini_vllm.block_pool import NONE_HASH, KVCacheBlock  # noqa: F401  (NONE_HASH: task 5)
from mini_vllm.block_pool import BlockPool as _EngineBlockPool

if TYPE_CHECKING:
    from mini_vllm.request import Request

BlockHash = bytes


class FreeKVCacheBlockQueue:
    """Free blocks, front = evicted first. O(1) ``popleft``, ``append`` and ``remove``.

    ``remove`` is why this is not a ``collections.deque``: a prefix-cache hit on a free
    block has to take it out of the middle. The links live on the blocks, so no node
    objects are created, and two sentinels remove every "first/last" special case.
    """

    def __init__(self, blocks: list[KVCacheBlock]) -> None:
        self.num_free_blocks = len(blocks)
        self.fake_free_list_head = KVCacheBlock(block_id=-1)
        self.fake_free_list_tail = KVCacheBlock(block_id=-1)
        chain = [self.fake_free_list_head, *blocks, self.fake_free_list_tail]
        for left, right in zip(chain, chain[1:]):
            left.next_free_block = right
            right.prev_free_block = left

    def popleft(self) -> KVCacheBlock:
        """Unlink and return the front block; ValueError when the queue is empty.
        vllm/v1/core/kv_cache_utils.py:216@0decac0 (popleft)."""
        raise NotImplementedError("TODO 2: take the front block (README task 2)")

    def popleft_n(self, n: int) -> list[KVCacheBlock]:
        """The first ``n`` blocks, front first; ValueError (nothing popped) if fewer are free."""
        raise NotImplementedError("TODO 2: take several blocks from the front (README task 2)")

    def remove(self, block: KVCacheBlock) -> None:
        """Unlink ``block`` from wherever it is, in O(1); RuntimeError if it is not linked.
        vllm/v1/core/kv_cache_utils.py:286@0decac0 (remove)."""
        raise NotImplementedError("TODO 1: unlink a block from anywhere in the queue (README task 1)")

    def append(self, block: KVCacheBlock) -> None:
        """Link ``block`` at the back; RuntimeError if it is already linked.
        vllm/v1/core/kv_cache_utils.py:306@0decac0 (append)."""
        raise NotImplementedError("TODO 3: link a block in at the back (README task 3)")

    def append_n(self, blocks: Iterable[KVCacheBlock]) -> None:
        """``append`` each block, in the order given."""
        raise NotImplementedError("TODO 3: link several blocks in at the back (README task 3)")

    def get_all_free_blocks(self) -> list[KVCacheBlock]:
        """Every free block, front to back, sentinels excluded."""
        raise NotImplementedError("TODO 4: list the free blocks front to back (README task 4)")


def hash_block_tokens(parent_block_hash: BlockHash | None, curr_block_token_ids: Sequence[int]) -> BlockHash:
    """SHA-256 digest of the parent's hash followed by this block's tokens as
    little-endian int64; a first block (parent None) uses ``NONE_HASH`` as its parent.

    The parent makes the key a whole prefix: equal tokens after different histories get
    different hashes, because their K/V differ (attention at position i saw positions
    0..i-1).
    """
    raise NotImplementedError("TODO 5: hash one full block (README task 5)")


def get_request_block_hasher(block_size: int) -> Callable[["Request"], list[BlockHash]]:
    """A function ``hasher(request)`` returning the hashes of the request's full blocks
    that ``request.block_hashes`` does not hold yet, chained on its last entry. A partial
    tail block gets no hash (I3). ``Request`` calls it at creation and after every
    appended token and extends ``block_hashes`` with what it returns.
    vllm/v1/core/kv_cache_utils.py:637@0decac0 (get_request_block_hasher)."""
    raise NotImplementedError("TODO 6: build the per-request block hasher (README task 6)")


class BlockPool:
    """Every block, the free queue and the prefix-cache index.

    ``cached_block_hash_to_block`` maps a hash to ``{block_id: block}``: equal content in
    two blocks is kept twice, never merged, so a block id handed to a request never
    changes (I2). Upstream explains the choice at
    vllm/v1/core/block_pool.py:34@0decac0 (BlockHashToBlockMap).
    """

    def __init__(self, num_blocks: int, enable_caching: bool = True) -> None:
        if num_blocks < 1:
            raise ValueError("num_blocks must be >= 1: block 0 is reserved as the null block")
        self.num_blocks = num_blocks
        self.enable_caching = enable_caching
        self.blocks = [KVCacheBlock(i) for i in range(num_blocks)]
        self.free_block_queue = FreeKVCacheBlockQueue(self.blocks)
        self.cached_block_hash_to_block: dict[BlockHash, dict[int, KVCacheBlock]] = {}
        # Block 0 never leaves the pool's hands: a placeholder table entry for "no block".
        self.null_block = self.free_block_queue.popleft()
        self.null_block.is_null = True

    # The engine's tests assert I1-I4 through this method; the engine's check reads only
    # the attributes both pools share, so it is borrowed, not rewritten.
    check_invariants = _EngineBlockPool.check_invariants

    def get_num_free_blocks(self) -> int:
        """Blocks in the free queue (the null block is never among them).
        vllm/v1/core/block_pool.py:489@0decac0 (get_num_free_blocks)."""
        raise NotImplementedError("TODO 11: count the free blocks (README task 11)")

    def get_usage(self) -> float:
        """Used fraction of the blocks a request could ever get (the null block excluded).
        vllm/v1/core/block_pool.py:497@0decac0 (get_usage)."""
        raise NotImplementedError("TODO 11: report the used fraction of the pool (README task 11)")

    def get_new_blocks(self, num_blocks: int) -> list[KVCacheBlock]:
        """Take ``num_blocks`` from the front of the free queue with ref_cnt 1, dropping
        any cache entry a taken block still carries. Asking for more than is free raises
        ValueError and changes nothing. vllm/v1/core/block_pool.py:333@0decac0 (BlockPool.get_new_blocks)."""
        raise NotImplementedError("TODO 7: hand out blocks from the front of the free queue (README task 7)")

    def _maybe_evict_cached_block(self, block: KVCacheBlock) -> bool:
        """Forget the block's hash and its index entry before its memory is reused; True
        if it had one. vllm/v1/core/block_pool.py:365@0decac0 (BlockPool._maybe_evict_cached_block)."""
        raise NotImplementedError("TODO 7: drop a reused block's cache entry (README task 7)")

    def touch(self, blocks: Sequence[KVCacheBlock]) -> None:
        """Take one more reference on each block (a prefix-cache hit). A block at ref_cnt
        0 is a free eviction candidate: it leaves the middle of the free queue first.
        vllm/v1/core/block_pool.py:402@0decac0 (BlockPool.touch)."""
        raise NotImplementedError("TODO 8: take a reference on prefix-cache hits (README task 8)")

    def free_blocks(self, ordered_blocks: Iterable[KVCacheBlock]) -> None:
        """Drop one reference from each block; those that reach 0 join the back of the
        free queue in the order given (the first given is evicted first). They keep
        their hash: free and cached at once (I4). AssertionError on a double free.
        vllm/v1/core/block_pool.py:419@0decac0 (BlockPool.free_blocks)."""
        raise NotImplementedError("TODO 9: drop references and requeue the freed blocks (README task 9)")

    def cache_full_blocks(
        self,
        request: "Request",
        blocks: list[KVCacheBlock],
        num_cached_blocks: int,
        num_full_blocks: int,
        block_size: int,
    ) -> None:
        """Give ``blocks[num_cached_blocks:num_full_blocks]`` the hashes at the same
        positions of ``request.block_hashes`` and index them.

        ``request.block_hashes`` holds one hash per full block of the request, so caching
        past its end means caching a partial block, which I3 forbids (AssertionError).
        ``block_size`` is part of upstream's signature; this pool's hashes were already
        computed for it by the request's hasher.
        vllm/v1/core/block_pool.py:211@0decac0 (BlockPool.cache_full_blocks).
        """
        raise NotImplementedError("TODO 10: register newly full blocks in the prefix cache (README task 10)")

    def get_cached_block(self, block_hash: BlockHash) -> KVCacheBlock | None:
        """The first block cached under ``block_hash``, or None.
        vllm/v1/core/block_pool.py:184@0decac0 (get_cached_block)."""
        raise NotImplementedError("TODO 10: look a hash up in the prefix cache (README task 10)")

    def reset_prefix_cache(self) -> bool:
        """Forget every hash and the whole index; refused (False, nothing changed) while
        any block is in use. vllm/v1/core/block_pool.py:454@0decac0 (BlockPool.reset_prefix_cache)."""
        raise NotImplementedError("TODO 11: forget every cached hash when the pool is idle (README task 11)")
