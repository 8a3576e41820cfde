#!/usr/bin/env python3
"""Phase 03: prefix-cache hit rate when requests share a system prompt.

``n`` requests arrive one after another; each prompt is a shared system prompt of
``shared`` tokens followed by a unique tail of ``tail`` tokens. The cache works as vLLM's
does: only *full* blocks are hashed, each block's hash chains its parent's hash, a lookup
walks the chain from the first block and stops at the first miss, and the hit is capped
at ``len(prompt) - 1`` tokens so the last position is always computed (it yields the
logits of the first output token). The cache never evicts here.

Hit rate = prompt tokens served from cache / prompt tokens, over all requests.

Run: ``python tools/plots/prefix_hit_rate.py`` → ``phase-03-continuous-batching-scheduler/figures/prefix_hit_rate.png``.
"""
from __future__ import annotations

import _common  # noqa: F401
from _common import ROOT, pyplot, save

OUT = ROOT / "phase-03-continuous-batching-scheduler" / "figures" / "prefix_hit_rate.png"


def cached_tokens(prompt: list[int], cache: set, block_size: int) -> int:
    """Tokens of ``prompt`` found in ``cache``, then insert the prompt's full blocks."""
    parent, hit, missed = None, 0, False
    num_full = len(prompt) // block_size
    for i in range(num_full):
        h = hash((parent, tuple(prompt[i * block_size:(i + 1) * block_size])))
        if not missed and h in cache:
            hit += block_size
        else:
            missed = True
            cache.add(h)
        parent = h
    cap = ((len(prompt) - 1) // block_size) * block_size  # keep the last token to compute
    return min(hit, cap)


def hit_rate(n: int, shared: int, tail: int, block_size: int = 16) -> float:
    cache: set = set()
    system = list(range(shared))
    hits = total = 0
    for r in range(n):
        prompt = system + [100_000 + r * tail + t for t in range(tail)]
        hits += cached_tokens(prompt, cache, block_size)
        total += len(prompt)
    return hits / total


def data(shared_values=tuple(range(0, 2049, 64)), tail: int = 64) -> dict:
    curves = {}
    for n in (2, 8, 32):
        curves[n] = {s: hit_rate(n, s, tail) for s in shared_values}
    return {"tail": tail, "curves": curves,
            "steps_block16": {s: hit_rate(8, s, tail) for s in (15, 16, 31, 32)},
            "block_size_effect": {b: hit_rate(32, 1000, tail, b) for b in (16, 64, 256)}}


def draw(d: dict, path=OUT):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for n, curve in d["curves"].items():
        xs = list(curve)
        ax.plot(xs, [100 * curve[s] for s in xs], label=f"{n} requests")
    ax.set_xlabel(f"shared system-prompt length (tokens); each request adds {d['tail']} unique tokens")
    ax.set_ylabel("prompt tokens served from cache (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Prefix-cache hit rate, block size 16")
    ax.legend()
    ax.grid(True, alpha=0.3)
    return save(fig, path)


def main() -> None:
    d = data()
    for n, curve in d["curves"].items():
        pts = ", ".join(f"{s}: {100 * curve[s]:.1f}%" for s in (0, 512, 1024, 2048))
        print(f"{n:2d} requests  {pts}")
    print("block-16 staircase (8 requests):", {s: round(100 * v, 2) for s, v in d["steps_block16"].items()})
    print("32 requests, 1000 shared tokens, by block size:",
          {b: round(100 * v, 2) for b, v in d["block_size_effect"].items()})
    draw(d)


if __name__ == "__main__":
    main()
