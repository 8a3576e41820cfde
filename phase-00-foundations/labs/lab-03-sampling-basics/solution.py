"""Lab 00-03 reference: from one row of logits to one token id.

The pipeline and its tie rules match ``mini_vllm.sampler.Sampler`` exactly, so the two
agree token for token given the same generator. Upstream runs the same stages batched
on the GPU: vllm/v1/sample/sampler.py:238@0decac0 (Sampler.sample) applies temperature,
then the logits processors (min-p among them), then top-k/top-p
(vllm/v1/sample/ops/topk_topp_sampler.py:372@0decac0 (apply_top_k_only) for top-k alone).
"""
from __future__ import annotations

import numpy as np

from mini_vllm import SamplingParams, apply_min_p


def softmax(logits) -> np.ndarray:
    """Probabilities from logits, in float64. Subtracting the max first keeps
    ``exp`` finite for logits in the hundreds; ``-inf`` entries get probability 0."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - np.max(x))
    return e / e.sum()


def apply_top_k(logits, k: int) -> np.ndarray:
    """Keep the ``k`` largest logits, set the rest to ``-inf``.

    ``k <= 0`` or ``k >= vocab`` disables the filter. Every logit equal to the k-th
    largest survives, so a tie at the boundary can keep more than ``k`` tokens.
    """
    x = np.asarray(logits, dtype=np.float64)
    if k <= 0 or k >= x.shape[-1]:
        return x.copy()
    kth = np.partition(x, -k)[-k]
    return np.where(x >= kth, x, -np.inf)


def apply_top_p(logits, p: float) -> np.ndarray:
    """Keep the smallest set of most likely tokens whose probability sums to >= ``p``.

    The token whose probability crosses ``p`` is kept. Equal probabilities are ranked
    lower token id first. ``p >= 1`` disables the filter.
    """
    x = np.asarray(logits, dtype=np.float64)
    if p >= 1.0:
        return x.copy()
    order = np.argsort(-x, kind="stable")
    cumulative = np.cumsum(softmax(x)[order])
    crossed = np.nonzero(cumulative >= p)[0]
    n_keep = int(crossed[0]) + 1 if crossed.size else len(order)
    out = np.full_like(x, -np.inf)
    out[order[:n_keep]] = x[order[:n_keep]]
    return out


def sample(logits, params: SamplingParams, generator: np.random.Generator | None = None) -> int:
    """One token id.

    Greedy (temperature below 1e-5) is ``argmax`` with no randomness at all. Otherwise:
    divide by the temperature, apply min-p (given), top-k, top-p, softmax, then draw one
    ``u = generator.random()`` and return the first id whose cumulative probability
    exceeds ``u``. Without a generator, one is made from ``params.seed``.
    """
    x = np.asarray(logits, dtype=np.float64)
    if params.greedy:
        return int(np.argmax(x))
    if generator is None:
        generator = np.random.default_rng(params.seed)
    x = x / params.temperature
    x = apply_min_p(x, params.min_p)
    x = apply_top_k(x, params.top_k)
    x = apply_top_p(x, params.top_p)
    probs = softmax(x)
    cumulative = np.cumsum(probs)
    idx = int(np.searchsorted(cumulative, generator.random(), side="right"))
    if idx >= len(cumulative):  # u fell in the rounding gap above cumulative[-1]
        idx = int(np.nonzero(probs)[0][-1])
    return idx


if __name__ == "__main__":
    logits = np.array([2.0, 1.0, 0.1])
    for t in (0.5, 1.0, 2.0):
        print(f"T={t}: {np.round(softmax(logits / t), 3)}")
    print("top-p 0.9 keeps", np.isfinite(apply_top_p(logits, 0.9)).sum(), "tokens")
