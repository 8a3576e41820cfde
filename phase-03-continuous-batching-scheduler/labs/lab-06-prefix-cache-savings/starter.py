"""Lab 03-06: prefix caching, counted to the token.

The meter is the sum of ``total_num_scheduled_tokens`` over every step: all the work the
scheduler ever asked the model for. Chunking and batching only move that work between
steps; a prefix-cache hit removes it. So caching off minus caching on is exactly what
the cache saved, and for N requests that share a prefix it has a closed form.

The default workload is the one recorded from vLLM 0.22.1 as ``prefix_pc0_stagger0`` /
``prefix_pc1_stagger0`` (mini_vllm/testdata): 8 prompts of 65 tokens, the first 64 shared,
block size 4, 4 output tokens each. Your work: TODOs 1-3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mini_vllm import LLMEngine, SamplingParams


def shared_prefix_prompts(num_requests: int = 8, shared_len: int = 64, unique_len: int = 1) -> list[list[int]]:
    """``num_requests`` prompts: the same ``shared_len`` tokens, then ``unique_len`` tokens
    that differ from the first one on (given)."""
    shared = [5 + i % 40 for i in range(shared_len)]
    return [shared + [200 + r] * unique_len for r in range(num_requests)]


@dataclass
class Count:
    """One run: the odometer, per step and in total, and what each request produced."""

    total: int = 0
    per_step: list[int] = field(default_factory=list)
    outputs: list[list[int]] = field(default_factory=list)
    num_cached_tokens: list[int] = field(default_factory=list)


def run_and_count(prompts: list[list[int]], enable_prefix_caching: bool, block_size: int = 4,
                  max_tokens: int = 4) -> Count:
    """Generate all prompts together (greedy, ``ignore_eos``) and read the odometer."""
    raise NotImplementedError("TODO 1: run the prompts and read the token odometer (README task 1)")


def predicted_savings(num_requests: int, shared_len: int, prompt_len: int, block_size: int) -> int:
    """Tokens caching saves when ``num_requests`` prompts of ``prompt_len`` tokens share
    their first ``shared_len`` tokens and arrive together.

    The first request pays in full; each follower adopts whole blocks only: the shared
    part rounded down to a block, and never the block holding the last prompt token,
    which must be computed to get logits (at most (prompt_len - 1) // block_size blocks).
    """
    raise NotImplementedError("TODO 2: predict the tokens caching saves (README task 2)")


def predicted_total(num_requests: int, shared_len: int, prompt_len: int, block_size: int, max_tokens: int,
                    enable_prefix_caching: bool) -> int:
    """The odometer's reading: every request computes its prompt and all but its last
    output token (the last one is sampled, never fed back), minus what caching saves."""
    raise NotImplementedError("TODO 3: predict the odometer's reading (README task 3)")


if __name__ == "__main__":
    prompts = shared_prefix_prompts()
    off, on = run_and_count(prompts, False), run_and_count(prompts, True)
    print(f"caching off: {off.total} tokens, per step {off.per_step}")
    print(f"caching on : {on.total} tokens, per step {on.per_step}, cached per request {on.num_cached_tokens}")
    print(f"saved {off.total - on.total} = predicted {predicted_savings(8, 64, 65, 4)}; "
          f"same outputs: {off.outputs == on.outputs}")
    odd = shared_prefix_prompts(shared_len=66)
    print(f"66 shared tokens: cached per request {run_and_count(odd, True).num_cached_tokens}, "
          f"saved {run_and_count(odd, False).total - run_and_count(odd, True).total}")
