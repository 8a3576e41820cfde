#!/usr/bin/env python3
"""Phase 02 deep dive §6: the token regions of ``KVCacheManager.allocate_slots``, counted.

``allocate_slots`` sees a request's tokens as five consecutive regions: ``comp`` (already
computed, blocks held), ``new_comp`` (prefix-cache hits found this step), ``ext_comp``
(hits held by a KV connector), ``new`` (to compute now, drafts included) and
``lookahead`` (slots a drafter will write). This counts, for one call, how many blocks
the request must hold afterwards, how many come from the free queue, and how many tokens
get cached (hashed) at the end, following
``vllm/v1/core/kv_cache_manager.py:363@0decac0 ("num_tokens_need_slot = min(")`` and
``vllm/v1/core/kv_cache_manager.py:421@0decac0 ("num_tokens_to_cache = min(")``
for a single full-attention group with no sliding window.

Run: ``python tools/plots/kv_regions.py`` prints the deep dive's two examples.
"""
from __future__ import annotations

import _common  # noqa: F401


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def regions(num_tokens: int, comp: int, new_comp: int, new: int, block_size: int,
            ext_comp: int = 0, lookahead: int = 0, held_blocks: int | None = None,
            max_model_len: int = 1 << 30) -> dict:
    held = cdiv(comp, block_size) if held_blocks is None else held_blocks
    total_computed = min(comp + new_comp + ext_comp, max_model_len)
    need_slot = min(total_computed + new + lookahead, max_model_len)
    blocks_after = cdiv(need_slot, block_size)
    hit_blocks = new_comp // block_size
    fresh = blocks_after - held - hit_blocks
    return {"need_slot": need_slot, "blocks_after": blocks_after, "hit_blocks": hit_blocks,
            "fresh_blocks": fresh,
            "tokens_to_cache": min(total_computed + new, num_tokens),
            "full_blocks_cached": min(total_computed + new, num_tokens) // block_size}


EXAMPLES = {
    # A 60-token prompt whose first 32 tokens are cached, admitted in one step.
    "admission": dict(num_tokens=60, comp=0, new_comp=32, new=28, block_size=16),
    # Next step: 61 verified tokens (the prompt and one sampled), 1 + 3 draft tokens to
    # check, and 3 lookahead slots for the drafter.
    "spec_decode": dict(num_tokens=61, comp=60, new_comp=0, new=4, block_size=16, lookahead=3),
}


def data() -> dict:
    return {name: regions(**kw) for name, kw in EXAMPLES.items()}


def main() -> None:
    for name, r in data().items():
        print(name, EXAMPLES[name], "->", r)


if __name__ == "__main__":
    main()
