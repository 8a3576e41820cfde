"""Lab 00-03: from one row of logits to one token id. Your work: the four functions below.

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
    raise NotImplementedError("TODO 1: a numerically stable softmax (README task 1)")


def apply_top_k(logits, k: int) -> np.ndarray:
    """Keep the ``k`` largest logits, set the rest to ``-inf``.

    ``k <= 0`` or ``k >= vocab`` disables the filter. Every logit equal to the k-th
    largest survives, so a tie at the boundary can keep more than ``k`` tokens.
    """
    raise NotImplementedError("TODO 2: keep the k largest logits (README task 2)")


def apply_top_p(logits, p: float) -> np.ndarray:
    """Keep the smallest set of most likely tokens whose probability sums to >= ``p``.

    The token whose probability crosses ``p`` is kept. Equal probabilities are ranked
    lower token id first. ``p >= 1`` disables the filter.
    """
    raise NotImplementedError("TODO 3: keep the smallest nucleus that reaches p (README task 3)")


def sample(logits, params: SamplingParams, generator: np.random.Generator | None = None) -> int:
    """One token id.

    Greedy (temperature below 1e-5) is ``argmax`` with no randomness at all. Otherwise:
    divide by the temperature, apply min-p (given), top-k, top-p, softmax, then draw one
    ``u = generator.random()`` and return the first id whose cumulative probability
    exceeds ``u``. Without a generator, one is made from ``params.seed``.
    """
    raise NotImplementedError("TODO 4: turn one row of logits into one token id (README task 4)")


if __name__ == "__main__":
    logits = np.array([2.0, 1.0, 0.1])
    for t in (0.5, 1.0, 2.0):
        print(f"T={t}: {np.round(softmax(logits / t), 3)}")
    print("top-p 0.9 keeps", np.isfinite(apply_top_p(logits, 0.9)).sum(), "tokens")
