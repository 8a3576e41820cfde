"""Physical KV blocks: metadata, the free list in eviction order, and the prefix cache.

Four invariants hold after every public call (``BlockPool.check_invariants`` asserts them):

- I1  for every block but the null block: in the free queue exactly when ref_cnt == 0;
- I2  block ids never change under a request (no de-duplication of equal content);
- I3  only full blocks carry a hash and sit in the prefix-cache index;
- I4  a cached block with ref_cnt == 0 stays in the free queue: it can be evicted by
      ``get_new_blocks`` or revived by ``touch``.

Upstream: vllm/v1/core/kv_cache_utils.py and vllm/v1/core/block_pool.py:130@0decac0 (BlockPool).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:
    from mini_vllm.request import Request

BlockHash = bytes

# Parent hash of every first block. Upstream draws it from os.urandom unless
# PYTHONHASHSEED is set (vllm/v1/core/kv_cache_utils.py:97@0decac0 (init_none_hash));
# mini_vllm fixes it so hashes are identical across processes and test runs.
NONE_HASH: BlockHash = hashlib.sha256(b"mini_vllm:NONE_HASH").digest()


def hash_block_tokens(parent_block_hash: BlockHash | None, curr_block_token_ids: Sequence[int]) -> BlockHash:
    """SHA-256 of (parent hash, this block's tokens).

    Folding in the parent makes a hit on block k imply blocks 0..k-1 matched too: the
    cache keys a *prefix*, not a block's content. Upstream also folds in extra keys
    (LoRA, multimodal, cache salt) and lets the hash function be configured:
    vllm/v1/core/kv_cache_utils.py:541@0decac0 (hash_block_tokens).
    """
    parent = parent_block_hash or NONE_HASH
    tokens = np.asarray(curr_block_token_ids, dtype="<i8").tobytes()
    return hashlib.sha256(parent + tokens).digest()


def get_request_block_hasher(block_size: int) -> Callable[["Request"], list[BlockHash]]:
    """Hash the request's full blocks that are not hashed yet; the partial tail block is
    never hashed (I3). Same shape as
    vllm/v1/core/kv_cache_utils.py:637@0decac0 (get_request_block_hasher)."""

    def request_block_hasher(request: "Request") -> list[BlockHash]:
        start = len(request.block_hashes) * block_size
        parent = request.block_hashes[-1] if request.block_hashes else None
        tokens = request.all_token_ids
        new_hashes = []
        while start + block_size <= len(tokens):
            parent = hash_block_tokens(parent, tokens[start : start + block_size])
            new_hashes.append(parent)
            start += block_size
        return new_hashes

    request_block_hasher.block_size = block_size
    return request_block_hasher


@dataclass(eq=False)
class KVCacheBlock:
    """Metadata of one physical block; its K/V live in the model's cache arrays at
    index ``block_id``. Mirrors vllm/v1/core/kv_cache_utils.py:116@0decac0 (KVCacheBlock).

    The two link fields belong to FreeKVCacheBlockQueue; nothing else may touch them.
    ``eq=False`` keeps identity semantics, so two blocks never compare equal by content.
    """

    block_id: int
    ref_cnt: int = 0
    _block_hash: BlockHash | None = None
    prev_free_block: "KVCacheBlock | None" = None
    next_free_block: "KVCacheBlock | None" = None
    is_null: bool = False

    @property
    def block_hash(self) -> BlockHash | None:
        return self._block_hash

    @block_hash.setter
    def block_hash(self, block_hash: BlockHash) -> None:
        # A hash is set once, when the block fills; re-hashing would mean its content
        # changed under a reader (I2/I3).
        if self._block_hash is not None:
            raise AssertionError(f"block {self.block_id} already has a hash")
        self._block_hash = block_hash

    def reset_hash(self) -> None:
        self._block_hash = None

    def __repr__(self) -> str:
        return f"KVCacheBlock(id={self.block_id}, ref_cnt={self.ref_cnt}, cached={self._block_hash is not None})"


class FreeKVCacheBlockQueue:
    """Doubly linked list of free blocks, front = next to evict.

    Why not ``collections.deque``: a prefix-cache hit must pull a block out of the
    *middle* of the free list (``remove``) in O(1), and the links live on the blocks
    themselves so no node objects are allocated. Two sentinels mean no operation ever
    branches on "first" or "last". Upstream:
    vllm/v1/core/kv_cache_utils.py:164@0decac0 (FreeKVCacheBlockQueue).
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
        self._unlink(first)
        return first

    def popleft_n(self, n: int) -> list[KVCacheBlock]:
        if n > self.num_free_blocks:
            raise ValueError(f"cannot pop {n} blocks, only {self.num_free_blocks} free")
        return [self.popleft() for _ in range(n)]

    def remove(self, block: KVCacheBlock) -> None:
        if block.prev_free_block is None or block.next_free_block is None:
            raise RuntimeError(f"remove() of a block that is not in the free queue: {block}")
        self._unlink(block)

    def append(self, block: KVCacheBlock) -> None:
        if block.prev_free_block is not None or block.next_free_block is not None:
            raise RuntimeError(f"append() of a block already in the free queue: {block}")
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
        out, curr = [], self.fake_free_list_head.next_free_block
        while curr is not self.fake_free_list_tail:
            out.append(curr)
            curr = curr.next_free_block
        return out

    def _unlink(self, block: KVCacheBlock) -> None:
        block.prev_free_block.next_free_block = block.next_free_block
        block.next_free_block.prev_free_block = block.prev_free_block
        block.prev_free_block = block.next_free_block = None
        self.num_free_blocks -= 1


class BlockPool:
    """Owns every block, the free queue and the hash -> block index.

    Block 0 is the null block: popped at construction and never handed out, so a block
    table can say "no block here" without a sentinel value
    (vllm/v1/core/block_pool.py:176@0decac0 ("self.null_block = self.free_block_queue.popleft()")).
    The free count therefore never includes it.

    The index maps a hash to *all* blocks holding it, keyed by block id, because equal
    content is not de-duplicated (I2): two requests that fill identical blocks keep their
    own. Upstream packs the common single-block case without the inner dict
    (vllm/v1/core/block_pool.py:34@0decac0 (BlockHashToBlockMap)).
    """

    def __init__(self, num_blocks: int, enable_caching: bool = True) -> None:
        if not isinstance(num_blocks, int) or num_blocks < 1:
            raise ValueError(f"num_blocks must be an int >= 1 (block 0 is the null block), got {num_blocks!r}")
        self.num_blocks = num_blocks
        self.enable_caching = enable_caching
        self.blocks = [KVCacheBlock(i) for i in range(num_blocks)]
        self.free_block_queue = FreeKVCacheBlockQueue(self.blocks)
        self.cached_block_hash_to_block: dict[BlockHash, dict[int, KVCacheBlock]] = {}
        self.null_block = self.free_block_queue.popleft()
        self.null_block.is_null = True

    def get_cached_block(self, block_hash: BlockHash) -> KVCacheBlock | None:
        """Any block holding ``block_hash`` (the first one cached), or None."""
        blocks = self.cached_block_hash_to_block.get(block_hash)
        return next(iter(blocks.values())) if blocks else None

    def cache_full_blocks(
        self,
        request: "Request",
        blocks: list[KVCacheBlock],
        num_cached_blocks: int,
        num_full_blocks: int,
        block_size: int,
    ) -> None:
        """Register ``blocks[num_cached_blocks:num_full_blocks]`` under the request's
        block hashes. Called at allocation time for the tokens this step *will* compute,
        so a request admitted later in the same step can already hit them: the model
        writes every K/V of the step before any attention reads (see model.py).
        Upstream: vllm/v1/core/block_pool.py:211@0decac0 (BlockPool.cache_full_blocks).
        """
        if num_cached_blocks >= num_full_blocks:
            return
        if len(request.block_hashes) < num_full_blocks:
            raise AssertionError(
                f"request {request.request_id} has {len(request.block_hashes)} block hashes, "
                f"needs {num_full_blocks}"
            )
        for i in range(num_cached_blocks, num_full_blocks):
            block = blocks[i]
            if block.is_null:
                continue
            block_hash = request.block_hashes[i]
            block.block_hash = block_hash
            self.cached_block_hash_to_block.setdefault(block_hash, {})[block.block_id] = block

    def get_new_blocks(self, num_blocks: int) -> list[KVCacheBlock]:
        """Pop ``num_blocks`` from the front of the free queue (least recently freed),
        evicting any cache entry they still carry (I4). The pool does not look for
        cache hits here; that is the manager's job.
        vllm/v1/core/block_pool.py:333@0decac0 (BlockPool.get_new_blocks)."""
        if num_blocks > self.get_num_free_blocks():
            raise ValueError(f"Cannot get {num_blocks} free blocks from the pool")
        blocks = self.free_block_queue.popleft_n(num_blocks)
        for block in blocks:
            if self.enable_caching:
                self._maybe_evict_cached_block(block)
            assert block.ref_cnt == 0, block
            block.ref_cnt = 1
        return blocks

    def _maybe_evict_cached_block(self, block: KVCacheBlock) -> bool:
        """vllm/v1/core/block_pool.py:365@0decac0 (BlockPool._maybe_evict_cached_block)."""
        block_hash = block.block_hash
        if block_hash is None:
            return False
        entries = self.cached_block_hash_to_block.get(block_hash)
        if entries is None or entries.pop(block.block_id, None) is None:
            raise AssertionError(f"{block} has a hash but is not in the cache index")
        if not entries:
            del self.cached_block_hash_to_block[block_hash]
        block.reset_hash()
        return True

    def touch(self, blocks: Sequence[KVCacheBlock]) -> None:
        """Take a reference on prefix-cache hits. A hit with ref_cnt 0 sits somewhere in
        the free queue; ``remove`` pulls it out in O(1) (the reason the queue is a linked
        list). vllm/v1/core/block_pool.py:402@0decac0 (BlockPool.touch)."""
        for block in blocks:
            if block.ref_cnt == 0 and not block.is_null:
                self.free_block_queue.remove(block)
            block.ref_cnt += 1

    def free_blocks(self, ordered_blocks: Iterable[KVCacheBlock]) -> None:
        """Drop one reference from each block; those reaching 0 go to the *tail* of the
        free queue in the order given, so the first one given is evicted first. Cached
        blocks keep their hash there (I4).
        vllm/v1/core/block_pool.py:419@0decac0 (BlockPool.free_blocks)."""
        blocks = list(ordered_blocks)
        for block in blocks:
            if block.ref_cnt <= 0 and not block.is_null:
                raise AssertionError(f"double free of {block}")
            block.ref_cnt -= 1
        self.free_block_queue.append_n(b for b in blocks if b.ref_cnt == 0 and not b.is_null)

    def reset_prefix_cache(self) -> bool:
        """Forget every hash; refused (False) while any block is in use, as
        vllm/v1/core/block_pool.py:454@0decac0 (BlockPool.reset_prefix_cache)."""
        if self.get_num_free_blocks() != self.num_blocks - 1:
            return False
        for block in self.blocks:
            block.reset_hash()
        self.cached_block_hash_to_block = {}
        return True

    def get_num_free_blocks(self) -> int:
        return self.free_block_queue.num_free_blocks

    def get_usage(self) -> float:
        """Fraction of usable blocks (null block excluded) that are not free."""
        total = self.num_blocks - 1
        return 0.0 if total == 0 else 1.0 - self.get_num_free_blocks() / total

    def check_invariants(self) -> None:
        """Assert I1, I3/I4 index consistency and that no block is lost. O(num_blocks):
        for tests, never on the hot path."""
        free = self.free_block_queue.get_all_free_blocks()
        free_ids = {b.block_id for b in free}
        assert len(free_ids) == len(free) == self.free_block_queue.num_free_blocks, "free queue count out of sync"
        for block in self.blocks:
            if block.is_null:
                assert block.block_id == 0 and block.block_id not in free_ids, "null block leaked into the free queue"
                assert block.block_hash is None, "null block was cached"
                continue
            in_queue = block.block_id in free_ids
            assert in_queue == (block.ref_cnt == 0), f"I1 violated for {block} (in free queue: {in_queue})"
            assert block.ref_cnt >= 0, f"negative ref_cnt on {block}"
            if block.block_hash is not None:
                entries = self.cached_block_hash_to_block.get(block.block_hash, {})
                assert entries.get(block.block_id) is block, f"{block} has a hash but is not indexed"
        for block_hash, entries in self.cached_block_hash_to_block.items():
            assert entries, "empty entry left in the cache index"
            for block in entries.values():
                assert block.block_hash == block_hash, f"index points at {block} under a stale hash"
