"""Lab 09-02: n > 1 as child requests, and the prefix-cache hits it earns. Your work: TODOs 1-4.

``SamplingParams(n=4)`` never reaches the engine core. The front end makes four child
requests with the same prompt; the first prefills it and caches its full blocks at
allocation, the other three find those blocks and prefill only the rest. This lab predicts
the hits exactly, measures them on mini_vllm, and (GPU test) on vLLM 0.22.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mini_vllm import LLMEngine, SamplingParams


def child_requests(request_id: str, params: SamplingParams) -> list[tuple[str, SamplingParams]]:
    """The n children of a request: ids ``"{i}_{request_id}"``, params with ``n=1`` and,
    when the parent is seeded, ``seed + i``."""
    raise NotImplementedError("TODO 1: the n child ids and params (README task 1)")


def predict_cached_tokens(prompt_len: int, n: int, block_size: int) -> list[int]:
    """Tokens each child finds cached, in admission order: none for the first, then every
    full block except one holding the last prompt token."""
    raise NotImplementedError("TODO 2: cached tokens per child (README task 2)")


def predict_hit_rate(prompt_len: int, n: int, block_size: int) -> float:
    """The engine's prefix-cache hit rate for one n-way request: hits over queries, both
    counted in prompt tokens looked up."""
    raise NotImplementedError("TODO 3: hits over queries (README task 3)")


def predict_prefill_tokens(prompt_len: int, n: int, block_size: int) -> int:
    """Prompt tokens the n children compute, with prefix caching on."""
    raise NotImplementedError("TODO 3: prompt tokens computed (README task 3)")


@dataclass
class Meter:
    hits: int
    queries: int
    prefill_tokens: int
    num_cached_tokens: int
    completions: list[list[int]] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


def measure(prompt: list[int], n: int, block_size: int = 16, max_tokens: int = 4,
            enable_prefix_caching: bool = True, seed: int = 0) -> Meter:
    """Run one ``SamplingParams(n=n)`` request on a fresh mini_vllm engine and read its
    prefix-cache counters, prefill work and completions."""
    raise NotImplementedError("TODO 4: run one n-way request and read the counters (README task 4)")


def workload_prompt(prompt_len: int = 33) -> list[int]:
    """Token ids 10.. valid for mini_vllm's 257-token vocabulary and the GPU test's 512."""
    return [(37 * i) % 240 + 10 for i in range(prompt_len)]


def report() -> dict[str, object]:
    on = measure(workload_prompt(), 4)
    off = measure(workload_prompt(), 4, enable_prefix_caching=False)
    return {"predicted_cached": predict_cached_tokens(33, 4, 16), "hits/queries": (on.hits, on.queries),
            "hit_rate": round(on.hit_rate, 4), "prefill_on/off": (on.prefill_tokens, off.prefill_tokens),
            "rate_at_257_tokens": round(predict_hit_rate(257, 4, 16), 4),
            "distinct_completions": len({tuple(c) for c in on.completions})}


if __name__ == "__main__":
    for name, value in report().items():
        print(f"{name:22s} {value}")
