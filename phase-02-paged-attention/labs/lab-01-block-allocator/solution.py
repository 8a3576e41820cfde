"""Lab 02-01 (reference): the paged KV-cache block allocator.

Three pieces, named as upstream names them:

- ``KVCacheBlock``: metadata of one physical block (vllm/v1/core/kv_cache_utils.py:116@0decac0 (KVCacheBlock));
- ``FreeKVCacheBlockQueue``: the free list in eviction order, a doubly linked list threaded
  through the blocks themselves (vllm/v1/core/kv_cache_utils.py:164@0decac0 (FreeKVCacheBlockQueue));
- ``BlockPool``: all blocks, the free queue, and the hash -> block prefix-cache index
  (vllm/v1/core/block_pool.py:130@0decac0 (BlockPool)).

The K/V numbers themselves never appear here: a block id is an index into the model's cache
arrays, and everything this file does is bookkeeping about who may read or overwrite which
index.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from mini_vllm.block_pool import NONE_HASH

BlockHash = bytes


@dataclass(eq=False)
class KVCacheBlock:
    """One physical block. ``eq=False``: two blocks are never equal because their
    fields are; identity is the block id's slot in ``BlockPool.blocks``."""

    block_id: int
    ref_cnt: int = 0
    _block_hash: BlockHash | None = None
    # Owned by FreeKVCacheBlockQueue; nothing else writes them.
    prev_free_block: "KVCacheBlock | None" = None
    next_free_block: "KVCacheBlock | None" = None
    is_null: bool = False

    @property
    def block_hash(self) -> BlockHash | None:
        return self._block_hash

    @block_hash.setter
    def block_hash(self, block_hash: BlockHash) -> None:
        # Set once, when the block is full; a second hash would mean its content changed.
        # Upstream asserts the same: vllm/v1/core/kv_cache_utils.py:140@0decac0 (KVCacheBlock.block_hash).
        if self._block_hash is not None:
            raise AssertionError(f"block {self.block_id} already has a hash")
        self._block_hash = block_hash

    def reset_hash(self) -> None:
        self._block_hash = None


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
        first = self.fake_free_list_head.next_free_block
        if first is self.fake_free_list_tail:
            raise ValueError("No free blocks available")
        self.remove(first)
        return first

    def popleft_n(self, n: int) -> list[KVCacheBlock]:
        if n > self.num_free_blocks:
            raise ValueError(f"cannot pop {n} blocks: {self.num_free_blocks} free")
        return [self.popleft() for _ in range(n)]

    def remove(self, block: KVCacheBlock) -> None:
        prev, nxt = block.prev_free_block, block.next_free_block
        if prev is None or nxt is None:
            raise RuntimeError(f"remove() of block {block.block_id}, which is not in the free queue")
        prev.next_free_block = nxt
        nxt.prev_free_block = prev
        block.prev_free_block = block.next_free_block = None
        self.num_free_blocks -= 1

    def append(self, block: KVCacheBlock) -> None:
        if block.prev_free_block is not None or block.next_free_block is not None:
            raise RuntimeError(f"append() of block {block.block_id}, which is already in the free queue")
        last = self.fake_free_list_tail.prev_free_block
        last.next_free_block = block
        block.prev_free_block = last
        block.next_free_block = self.fake_free_list_tail
        self.fake_free_list_tail.prev_free_block = block
        self.num_free_blocks += 1

    def append_n(self, blocks: Iterable[KVCacheBlock]) -> None:
        for block in blocks:
            self.append(block)

    def get_all_free_blocks(self) -> list[KVCacheBlock]:
        out = []
        curr = self.fake_free_list_head.next_free_block
        while curr is not self.fake_free_list_tail:
            out.append(curr)
            curr = curr.next_free_block
        return out


def hash_block_tokens(parent_block_hash: BlockHash | None, curr_block_token_ids: Sequence[int]) -> BlockHash:
    """SHA-256 over the parent's hash followed by this block's tokens as little-endian int64.

    The parent makes the key a whole prefix: equal tokens after different histories get
    different hashes, because their K/V differ (attention at position i saw positions
    0..i-1). A first block uses ``NONE_HASH`` as its parent.
    """
    parent = parent_block_hash or NONE_HASH
    return hashlib.sha256(parent + np.asarray(curr_block_token_ids, dtype="<i8").tobytes()).digest()


def hash_request_blocks(token_ids: Sequence[int], block_size: int) -> list[BlockHash]:
    """Chained hashes of every *full* block of ``token_ids``; a partial tail gets none (I3)."""
    hashes: list[BlockHash] = []
    parent = None
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        parent = hash_block_tokens(parent, token_ids[start : start + block_size])
        hashes.append(parent)
    return hashes


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

    def get_num_free_blocks(self) -> int:
        return self.free_block_queue.num_free_blocks

    def get_usage(self) -> float:
        """Used fraction of the blocks a request could ever get (the null block excluded)."""
        total = self.num_blocks - 1
        return 0.0 if total == 0 else 1.0 - self.get_num_free_blocks() / total

    def get_new_blocks(self, num_blocks: int) -> list[KVCacheBlock]:
        """Take ``num_blocks`` from the front of the free queue with ref_cnt 1, dropping
        any cache entry a taken block still carries. Asking for more than is free raises
        and changes nothing. vllm/v1/core/block_pool.py:333@0decac0 (BlockPool.get_new_blocks)."""
        if num_blocks > self.get_num_free_blocks():
            raise ValueError(f"Cannot get {num_blocks} free blocks from the pool")
        blocks = self.free_block_queue.popleft_n(num_blocks)
        for block in blocks:
            if self.enable_caching:
                self._maybe_evict_cached_block(block)
            assert block.ref_cnt == 0, f"block {block.block_id} was in the free queue with ref_cnt {block.ref_cnt}"
            block.ref_cnt = 1
        return blocks

    def _maybe_evict_cached_block(self, block: KVCacheBlock) -> bool:
        """Forget the block's hash before its memory is reused; True if it had one.
        vllm/v1/core/block_pool.py:365@0decac0 (BlockPool._maybe_evict_cached_block)."""
        block_hash = block.block_hash
        if block_hash is None:
            return False
        entries = self.cached_block_hash_to_block.get(block_hash, {})
        if entries.pop(block.block_id, None) is None:
            return False
        if not entries:
            del self.cached_block_hash_to_block[block_hash]
        block.reset_hash()
        return True

    def touch(self, blocks: Sequence[KVCacheBlock]) -> None:
        """Take one more reference on each block. A block at ref_cnt 0 is a free eviction
        candidate: it leaves the middle of the free queue first.
        vllm/v1/core/block_pool.py:402@0decac0 (BlockPool.touch)."""
        for block in blocks:
            if block.ref_cnt == 0 and not block.is_null:
                self.free_block_queue.remove(block)
            block.ref_cnt += 1

    def free_blocks(self, ordered_blocks: Iterable[KVCacheBlock]) -> None:
        """Drop one reference from each block; those that reach 0 join the back of the
        free queue in the order given (the first given is evicted first). They keep
        their hash: free and cached at once (I4).
        vllm/v1/core/block_pool.py:419@0decac0 (BlockPool.free_blocks)."""
        blocks = list(ordered_blocks)
        for block in blocks:
            if block.ref_cnt <= 0 and not block.is_null:
                raise AssertionError(f"double free of block {block.block_id}")
            block.ref_cnt -= 1
        self.free_block_queue.append_n(b for b in blocks if b.ref_cnt == 0 and not b.is_null)

    def cache_full_blocks(
        self,
        blocks: list[KVCacheBlock],
        block_hashes: list[BlockHash],
        num_cached_blocks: int,
        num_full_blocks: int,
    ) -> None:
        """Give ``blocks[num_cached_blocks:num_full_blocks]`` their hashes and index them.

        ``block_hashes`` holds one hash per full block of the request (as
        ``hash_request_blocks`` returns), so asking to cache past it means caching a
        partial block, which I3 forbids. Upstream takes the request instead of its hashes:
        vllm/v1/core/block_pool.py:211@0decac0 (BlockPool.cache_full_blocks).
        """
        if num_full_blocks > len(block_hashes):
            raise AssertionError(
                f"asked to cache {num_full_blocks} blocks but only {len(block_hashes)} are full (I3)"
            )
        for i in range(num_cached_blocks, num_full_blocks):
            block = blocks[i]
            if block.is_null:
                continue
            block.block_hash = block_hashes[i]
            self.cached_block_hash_to_block.setdefault(block_hashes[i], {})[block.block_id] = block

    def get_cached_block(self, block_hash: BlockHash) -> KVCacheBlock | None:
        """The first block cached under ``block_hash``, or None."""
        entries = self.cached_block_hash_to_block.get(block_hash)
        return next(iter(entries.values())) if entries else None
