"""Lab 02-01 (your work): the paged KV-cache block allocator.

Three pieces, named as upstream names them:

- ``KVCacheBlock``: metadata of one physical block (given, complete);
- ``FreeKVCacheBlockQueue``: the free list in eviction order, a doubly linked list threaded
  through the blocks themselves (the constructor and its two sentinels are given);
- ``BlockPool``: all blocks, the free queue, and the hash -> block prefix-cache index
  (the constructor is given; it reserves block 0 as the null block through your popleft).

Work through the TODOs in number order; README.md says which tests each one turns green.
"""
from __future__ import annotations

import hashlib  # noqa: F401  (TODO 5)
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np  # noqa: F401  (TODO 5)

from mini_vllm.block_pool import NONE_HASH  # noqa: F401  (the parent of every first block)

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
        if self._block_hash is not None:
            raise AssertionError(f"block {self.block_id} already has a hash")
        self._block_hash = block_hash

    def reset_hash(self) -> None:
        self._block_hash = None


class FreeKVCacheBlockQueue:
    """Free blocks, front = evicted first. O(1) ``popleft``, ``append`` and ``remove``."""

    def __init__(self, blocks: list[KVCacheBlock]) -> None:
        self.num_free_blocks = len(blocks)
        self.fake_free_list_head = KVCacheBlock(block_id=-1)
        self.fake_free_list_tail = KVCacheBlock(block_id=-1)
        chain = [self.fake_free_list_head, *blocks, self.fake_free_list_tail]
        for left, right in zip(chain, chain[1:]):
            left.next_free_block = right
            right.prev_free_block = left

    def popleft(self) -> KVCacheBlock:
        """Unlink and return the block after the head sentinel; ValueError when empty."""
        raise NotImplementedError(
            "TODO 2: first = head.next_free_block; if it is the tail sentinel raise ValueError, "
            "else remove(first) and return it (README task 2)"
        )

    def popleft_n(self, n: int) -> list[KVCacheBlock]:
        """The first ``n`` blocks, front first; ValueError if fewer than ``n`` are free."""
        raise NotImplementedError("TODO 2: check n <= num_free_blocks, then popleft() n times (README task 2)")

    def remove(self, block: KVCacheBlock) -> None:
        """Unlink ``block`` from wherever it is, in O(1); RuntimeError if it is not linked."""
        raise NotImplementedError(
            "TODO 1: raise RuntimeError if a link is None; join prev and next to each other, "
            "set both of the block's links to None, num_free_blocks -= 1 (README task 1)"
        )

    def append(self, block: KVCacheBlock) -> None:
        """Link ``block`` just before the tail sentinel; RuntimeError if it is already linked."""
        raise NotImplementedError(
            "TODO 3: raise RuntimeError if the block has a link; splice it between "
            "tail.prev_free_block and the tail; num_free_blocks += 1 (README task 3)"
        )

    def append_n(self, blocks: Iterable[KVCacheBlock]) -> None:
        """``append`` each block, in order."""
        raise NotImplementedError("TODO 3: append each block in the order given (README task 3)")

    def get_all_free_blocks(self) -> list[KVCacheBlock]:
        """Every free block, front to back (sentinels excluded)."""
        raise NotImplementedError(
            "TODO 4: walk next_free_block from head.next_free_block until the tail sentinel (README task 4)"
        )


def hash_block_tokens(parent_block_hash: BlockHash | None, curr_block_token_ids: Sequence[int]) -> BlockHash:
    """SHA-256 over the parent's hash followed by this block's tokens as little-endian int64.

    A first block (``parent_block_hash`` None) uses ``NONE_HASH`` as its parent.
    """
    raise NotImplementedError(
        "TODO 5: hashlib.sha256((parent or NONE_HASH) + "
        "np.asarray(tokens, dtype='<i8').tobytes()).digest() (README task 5)"
    )


def hash_request_blocks(token_ids: Sequence[int], block_size: int) -> list[BlockHash]:
    """Chained hashes of every *full* block of ``token_ids``; a partial tail gets none."""
    raise NotImplementedError(
        "TODO 6: for each full block, parent = hash_block_tokens(parent, block tokens); "
        "collect the parents; stop before a partial tail (README task 6)"
    )


class BlockPool:
    """Every block, the free queue and the prefix-cache index
    ``cached_block_hash_to_block: dict[hash, dict[block_id, block]]``."""

    def __init__(self, num_blocks: int, enable_caching: bool = True) -> None:
        if num_blocks < 1:
            raise ValueError("num_blocks must be >= 1: block 0 is reserved as the null block")
        self.num_blocks = num_blocks
        self.enable_caching = enable_caching
        self.blocks = [KVCacheBlock(i) for i in range(num_blocks)]
        self.free_block_queue = FreeKVCacheBlockQueue(self.blocks)
        self.cached_block_hash_to_block: dict[BlockHash, dict[int, KVCacheBlock]] = {}
        self.null_block = self.free_block_queue.popleft()
        self.null_block.is_null = True

    def get_num_free_blocks(self) -> int:
        raise NotImplementedError("TODO 11: the free queue already counts them (README task 11)")

    def get_usage(self) -> float:
        """Used fraction of the blocks a request could ever get (the null block excluded)."""
        raise NotImplementedError(
            "TODO 11: 1 - free / (num_blocks - 1); 0.0 when the pool has only the null block (README task 11)"
        )

    def get_new_blocks(self, num_blocks: int) -> list[KVCacheBlock]:
        """Take ``num_blocks`` from the front of the free queue with ref_cnt 1."""
        raise NotImplementedError(
            "TODO 7: ValueError if not enough free (before touching anything); popleft_n; for each "
            "block: _maybe_evict_cached_block when caching, assert ref_cnt == 0, set it to 1 (README task 7)"
        )

    def _maybe_evict_cached_block(self, block: KVCacheBlock) -> bool:
        """Forget the block's hash before its memory is reused; True if it had one."""
        raise NotImplementedError(
            "TODO 7: no hash -> False; else pop block_id from the index entry (drop the entry "
            "when empty), reset_hash(), return True (README task 7)"
        )

    def touch(self, blocks: Sequence[KVCacheBlock]) -> None:
        """Take one more reference on each block, reviving free ones from the queue."""
        raise NotImplementedError(
            "TODO 8: if ref_cnt == 0 and not is_null: free_block_queue.remove(block); then "
            "ref_cnt += 1 (README task 8)"
        )

    def free_blocks(self, ordered_blocks: Iterable[KVCacheBlock]) -> None:
        """Drop one reference from each; those reaching 0 go to the back of the free queue
        in the order given. They keep their hash."""
        raise NotImplementedError(
            "TODO 9: AssertionError on ref_cnt <= 0 (double free); decrement all; append_n the "
            "non-null blocks now at 0, in the given order (README task 9)"
        )

    def cache_full_blocks(
        self,
        blocks: list[KVCacheBlock],
        block_hashes: list[BlockHash],
        num_cached_blocks: int,
        num_full_blocks: int,
    ) -> None:
        """Give ``blocks[num_cached_blocks:num_full_blocks]`` their hashes and index them."""
        raise NotImplementedError(
            "TODO 10: AssertionError if num_full_blocks > len(block_hashes) (I3); for each block in "
            "the range, skip the null block, set block.block_hash, add it to the index (README task 10)"
        )

    def get_cached_block(self, block_hash: BlockHash) -> KVCacheBlock | None:
        """The first block cached under ``block_hash``, or None."""
        raise NotImplementedError("TODO 10: first value of the index entry, or None (README task 10)")
