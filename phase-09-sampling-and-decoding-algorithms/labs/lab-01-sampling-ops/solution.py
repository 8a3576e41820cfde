"""Lab 09-01 reference: the sampling pipeline in the pinned vLLM's order.

One row of logits becomes one token in two halves. The first half edits logits and runs
for every request, greedy included: allowed ids, bad words, min_tokens, logit_bias,
penalties. The second half runs only for random sampling: temperature, min-p, top-k,
top-p, one draw. ``mini_vllm`` gives the masks that need no thought (allowed ids,
min_tokens, logit_bias) and top-k / top-p; you write the rest.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from mini_vllm.logits_processor import apply_allowed_token_ids, apply_logit_bias, apply_min_tokens
from mini_vllm.sampler import SamplingParams, apply_top_k, apply_top_p, softmax


def apply_penalties(logits: np.ndarray, prompt_token_ids, output_token_ids, presence_penalty: float = 0.0,
                    frequency_penalty: float = 0.0, repetition_penalty: float = 1.0) -> np.ndarray:
    """Repetition over prompt and output tokens (divide a positive logit, multiply a
    non-positive one, once per distinct token), then frequency (times the output count)
    and presence (once per distinct output token), both subtracted. A new array."""
    x = np.array(logits, dtype=np.float64)
    counts = Counter(output_token_ids)
    seen = sorted(set(prompt_token_ids) | set(counts))
    for t in seen:
        x[t] = x[t] / repetition_penalty if x[t] > 0 else x[t] * repetition_penalty
    for t, c in counts.items():
        x[t] -= frequency_penalty * c + presence_penalty
    return x


def apply_bad_words(logits: np.ndarray, bad_words, output_token_ids) -> np.ndarray:
    """Each bad word bans its last token when the output ends in the rest of it. A new array."""
    x = np.array(logits, dtype=np.float64)
    past = list(output_token_ids)
    for word in bad_words:
        *prefix, last = word
        if len(prefix) <= len(past) and past[len(past) - len(prefix):] == list(prefix):
            x[last] = -np.inf
    return x


def apply_min_p(logits: np.ndarray, min_p: float) -> np.ndarray:
    """-inf for every token whose probability is below ``min_p`` times the top one."""
    x = np.array(logits, dtype=np.float64)
    probs = softmax(x)
    x[probs < min_p * probs.max()] = -np.inf
    return x


def process_logits(logits: np.ndarray, params: SamplingParams, prompt_token_ids=(), output_token_ids=(),
                   eos_token_id: int | None = None) -> np.ndarray:
    """The argmax-changing half, upstream's order: allowed ids, bad words, min_tokens
    (stop ids plus EOS), logit_bias, penalties."""
    x = apply_allowed_token_ids(logits, params.allowed_token_ids)
    x = apply_bad_words(x, params.bad_words, output_token_ids)
    stops = set(params.stop_token_ids) | ({eos_token_id} if eos_token_id is not None else set())
    x = apply_min_tokens(x, len(output_token_ids), params.min_tokens, sorted(stops))
    x = apply_logit_bias(x, params.logit_bias)
    return apply_penalties(x, prompt_token_ids, output_token_ids, params.presence_penalty,
                           params.frequency_penalty, params.repetition_penalty)


def truncate(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """The random path's reshaping of processed logits: temperature, then min-p, then
    top-k, then top-p. Finite entries are the tokens a draw can return."""
    x = apply_min_p(np.asarray(logits, dtype=np.float64) / params.temperature, params.min_p)
    return apply_top_p(apply_top_k(x, params.top_k), params.top_p)


def sample(logits: np.ndarray, params: SamplingParams, generator: np.random.Generator, prompt_token_ids=(),
           output_token_ids=(), eos_token_id: int | None = None) -> int:
    """One token: process_logits, then argmax if greedy (no draw), else truncate and
    one ``generator.random()`` looked up in the cumulative probabilities."""
    x = process_logits(logits, params, prompt_token_ids, output_token_ids, eos_token_id)
    if params.greedy:
        return int(np.argmax(x))
    x = truncate(x, params)
    cum = np.cumsum(softmax(x))
    idx = int(np.searchsorted(cum, generator.random(), side="right"))
    return idx if idx < len(cum) else int(np.flatnonzero(np.isfinite(x))[-1])


def report() -> dict[str, object]:
    """The lab's numbers (``python solution.py``)."""
    probs = np.array([0.45, 0.40, 0.10, 0.05])
    logits = np.log(probs)
    pin = SamplingParams(min_p=0.2, top_p=0.89)
    rng = np.random.default_rng(0)
    draws = np.bincount([sample(logits, pin, rng) for _ in range(20000)], minlength=4) / 20000
    loop = np.array([0.0, 3.0, 1.0, 2.5])
    return {
        "pin_order_support": np.flatnonzero(np.isfinite(truncate(logits, pin))).tolist(),
        "pin_order_frequencies": draws.round(4).tolist(),
        "penalised_row": apply_penalties(loop, [3], [1, 1], 0.5, 0.25, 2.0).tolist(),
        "greedy_without_penalty": sample(loop, SamplingParams(temperature=0.0), rng, [3], [1, 1]),
        "greedy_with_penalty": sample(loop, SamplingParams(temperature=0.0, presence_penalty=0.5, frequency_penalty=0.25,
                                                           repetition_penalty=2.0), rng, [3], [1, 1]),
    }


if __name__ == "__main__":
    for name, value in report().items():
        print(f"{name:24s} {value}")
