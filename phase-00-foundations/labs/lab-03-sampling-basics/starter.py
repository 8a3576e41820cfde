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
    """Probabilities from logits, in float64; must not overflow for logits near 1000,
    and ``-inf`` entries get probability 0."""
    raise NotImplementedError("TODO 1: subtract the max, exponentiate, normalise (float64) — see README task 1")


def apply_top_k(logits, k: int) -> np.ndarray:
    """Keep the ``k`` largest logits, set the rest to ``-inf``.

    ``k <= 0`` or ``k >= vocab`` disables the filter (return a copy). Every logit equal
    to the k-th largest survives.
    """
    raise NotImplementedError(
        "TODO 2: find the k-th largest value (np.partition) and mask everything below it to -inf — see README task 2"
    )


def apply_top_p(logits, p: float) -> np.ndarray:
    """Keep the smallest set of most likely tokens whose probability sums to >= ``p``.

    The crossing token is kept; equal probabilities rank lower token id first;
    ``p >= 1`` disables the filter.
    """
    raise NotImplementedError(
        "TODO 3: stable-sort by descending logit, cumsum the probabilities, keep up to and "
        "including the first index where the sum reaches p — see README task 3"
    )


def sample(logits, params: SamplingParams, generator: np.random.Generator | None = None) -> int:
    """One token id: greedy argmax, or temperature -> min-p -> top-k -> top-p -> one draw.

    The draw is ``u = generator.random()`` and the first id whose cumulative probability
    exceeds ``u``; without a generator use ``np.random.default_rng(params.seed)``.
    """
    raise NotImplementedError(
        "TODO 4: if params.greedy return argmax; else scale by temperature, apply_min_p (given), "
        "your top-k and top-p, softmax, and one inverse-CDF draw — see README task 4"
    )
