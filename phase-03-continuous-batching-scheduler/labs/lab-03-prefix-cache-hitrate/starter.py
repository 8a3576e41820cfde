"""Lab 03-03: predict a prefix-cache hit rate, then read it off an engine.

Workload: 16 requests share a 240-token system prompt (15 blocks of 16) and end in a
16-token tail of their own. ``predict_hits`` says, per request, how many tokens the cache
will hand over; ``measure`` runs mini_vllm and reads the same meter vLLM exports
(hits and queries, counted in tokens, at each request's admission lookup:
vllm/v1/core/kv_cache_manager.py:228@0decac0 ("self.prefix_cache_stats.record(")).
The GPU test runs real vLLM 0.22.1 on the same token ids and compares.
Your work: TODOs 1-3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mini_vllm import LLMEngine, SamplingParams


def system_prompt_workload(num_requests: int = 16, system_len: int = 240, tail_len: int = 16) -> list[list[int]]:
    """``num_requests`` prompts: one shared system prompt, then a tail whose first token
    differs per request (given). Token ids stay in 10..249, valid for mini_vllm's
    257-token vocabulary and for the GPU test's 512-token one."""
    system = [(37 * i) % 240 + 10 for i in range(system_len)]
    return [system + [10 + r] + [(31 * r + 17 * j) % 240 + 10 for j in range(1, tail_len)]
            for r in range(num_requests)]


def predict_hits(prompts: list[list[int]], block_size: int) -> list[int]:
    """Tokens each request finds cached, for requests looked up in this order, each after
    all earlier ones were admitted, with nothing evicted.

    A hit is a run of full blocks from the start of the prompt whose whole prefix an
    earlier prompt also had (hashes are chained, so the first differing block ends the
    run), and never the block holding the last prompt token: at most
    (len - 1) // block_size blocks. Once admitted, a request's full prompt blocks are in
    the cache for everyone after it.
    """
    raise NotImplementedError("TODO 1: predict each request's prefix-cache hit (README task 1)")


@dataclass
class Meter:
    """One window of requests: the engine's prefix-cache counters and the prefill work."""

    queries: int = 0
    hits: int = 0
    prefill_tokens: int = 0
    num_cached_tokens: list[int] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


def measure(windows: list[list[list[int]]], enable_prefix_caching: bool = True, block_size: int = 16,
            max_tokens: int = 4) -> list[Meter]:
    """Run each window of prompts to completion on one engine, in order, and read the
    counters' growth over each window (the cache survives between windows)."""
    raise NotImplementedError("TODO 2: read the engine's hit counters window by window (README task 2)")


def prefill_reduction(hit_rate: float) -> float:
    """How many times less prefill a hit rate buys, when every prompt token is queried
    once and every miss is computed: total / (total - hits) = 1 / (1 - hit_rate)."""
    raise NotImplementedError("TODO 3: how much less prefill a hit rate buys (README task 3)")


if __name__ == "__main__":
    prompts = system_prompt_workload()
    print("predicted hits:", predict_hits(prompts, 16))
    for caching in (False, True):
        (m,) = measure([prompts], caching)
        print(f"caching={caching!s:<5}: hits {m.hits}/{m.queries} = {m.hit_rate:.2%}, prefill {m.prefill_tokens} tokens")
    first, rest = measure([prompts[:1], prompts[1:]])
    print(f"window 1 (request 0): {first.hit_rate:.2%}; window 2 (requests 1-15): {rest.hit_rate:.2%}, "
          f"prefill {rest.prefill_tokens} of {sum(map(len, prompts[1:]))} tokens")
    print(f"prefill reduction at 87.89%: {prefill_reduction(3600 / 4096):.2f}x; at 93.75%: {prefill_reduction(0.9375):.0f}x")
