"""The edits a request makes to its logits before anything is sampled.

One row at a time, in upstream's order
(vllm/v1/sample/sampler.py:366@0decac0 (Sampler.apply_logits_processors)):

1. ``allowed_token_ids``: every other token to -inf.
2. ``bad_words``: the last token of a banned sequence to -inf when the output so far
   ends in the rest of it.
3. the non-argmax-invariant processors, built-in order
   (vllm/v1/sample/logits_processor/__init__.py:49@0decac0 (BUILTIN_LOGITS_PROCESSORS)):
   ``min_tokens`` (stop ids and EOS to -inf until enough tokens exist), then ``logit_bias``.
4. penalties: repetition (prompt and output tokens), frequency and presence (output only).

All four can change the argmax, so they run for greedy requests too; min-p, which
cannot, runs later inside ``Sampler.sample`` after temperature. Upstream does each step
for the whole batch with tensors; here each is a numpy function of one row, returning a
new array.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from mini_vllm.sampler import SamplingParams


def apply_allowed_token_ids(logits: np.ndarray, allowed_token_ids: Sequence[int] | None) -> np.ndarray:
    """Keep only ``allowed_token_ids``; None keeps everything. Upstream fills a
    precomputed mask: vllm/v1/sample/sampler.py:392@0decac0 ("logits.masked_fill_(sampling_metadata.allowed_token_ids_mask")."""
    logits = np.array(logits, dtype=np.float64)
    if allowed_token_ids is None:
        return logits
    out = np.full_like(logits, -np.inf)
    ids = np.asarray(list(allowed_token_ids), dtype=np.int64)
    out[ids] = logits[ids]
    return out


def apply_bad_words(logits: np.ndarray, bad_words_token_ids: Sequence[Sequence[int]],
                    output_token_ids: Sequence[int]) -> np.ndarray:
    """Ban the next token of every banned sequence whose prefix the output ends with.

    A one-token bad word is banned always; a longer one only when the last
    ``len - 1`` output tokens equal its prefix. Only output tokens count, not the
    prompt: vllm/v1/sample/ops/bad_words.py:9@0decac0 (_apply_bad_words_single_batch).
    """
    logits = np.array(logits, dtype=np.float64)
    past = list(output_token_ids)
    for word in bad_words_token_ids:
        word = list(word)
        if len(word) > len(past) + 1:
            continue
        prefix = word[:-1]
        if not prefix or past[-len(prefix):] == prefix:
            logits[word[-1]] = -np.inf
    return logits


def apply_min_tokens(logits: np.ndarray, num_output_tokens: int, min_tokens: int,
                     stop_token_ids: Sequence[int]) -> np.ndarray:
    """While fewer than ``min_tokens`` tokens exist, no stop id (EOS included) can be
    drawn: vllm/v1/sample/logits_processor/builtin.py:234@0decac0 (MinTokensLogitsProcessor.apply)."""
    logits = np.array(logits, dtype=np.float64)
    if num_output_tokens < min_tokens and stop_token_ids:
        logits[np.asarray(list(stop_token_ids), dtype=np.int64)] = -np.inf
    return logits


def apply_logit_bias(logits: np.ndarray, logit_bias: dict[int, float] | None) -> np.ndarray:
    """Add each token's bias: vllm/v1/sample/logits_processor/builtin.py:161@0decac0 (LogitBiasLogitsProcessor.apply)."""
    logits = np.array(logits, dtype=np.float64)
    for token_id, bias in (logit_bias or {}).items():
        logits[token_id] += bias
    return logits


def apply_penalties(logits: np.ndarray, prompt_token_ids: Sequence[int], output_token_ids: Sequence[int],
                    presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                    repetition_penalty: float = 1.0) -> np.ndarray:
    """The three penalties of vllm/model_executor/layers/utils.py:51@0decac0 (apply_penalties).

    - repetition (multiplicative, CTRL-style): every token seen in the prompt *or* the
      output has a positive logit divided by the penalty and a non-positive one
      multiplied by it, so both move down when the penalty is > 1
      (vllm/_custom_ops.py:372@0decac0 ("scaling = torch.where(logits > 0, 1.0 / penalties, penalties)")).
    - frequency (additive, OpenAI's): minus ``frequency_penalty`` times the token's count
      in the output.
    - presence (additive): minus ``presence_penalty`` once for any token in the output.

    Only repetition looks at the prompt; frequency and presence count output tokens only.
    """
    logits = np.array(logits, dtype=np.float64)
    counts = Counter(output_token_ids)
    if repetition_penalty != 1.0:
        seen = np.asarray(sorted(set(prompt_token_ids) | set(counts)), dtype=np.int64)
        if seen.size:
            row = logits[seen]
            logits[seen] = np.where(row > 0, row / repetition_penalty, row * repetition_penalty)
    if counts and (frequency_penalty or presence_penalty):
        ids = np.asarray(list(counts), dtype=np.int64)
        logits[ids] -= frequency_penalty * np.asarray(list(counts.values()), dtype=np.float64)
        logits[ids] -= presence_penalty
    return logits


def apply_logits_processors(logits: np.ndarray, params: "SamplingParams", prompt_token_ids: Sequence[int] = (),
                            output_token_ids: Sequence[int] = (), eos_token_id: int | None = None) -> np.ndarray:
    """Steps 1-4 above for one request. ``eos_token_id`` joins the stop ids that
    ``min_tokens`` holds back, even under ``ignore_eos``, as upstream adds it to
    ``all_stop_token_ids`` unconditionally: vllm/sampling_params.py:568@0decac0 ("self._all_stop_token_ids.add(eos_token_id)")."""
    x = apply_allowed_token_ids(logits, params.allowed_token_ids)
    if params.bad_words:
        x = apply_bad_words(x, params.bad_words, output_token_ids)
    if params.min_tokens:
        stops = set(params.stop_token_ids)
        if eos_token_id is not None:
            stops.add(eos_token_id)
        x = apply_min_tokens(x, len(output_token_ids), params.min_tokens, sorted(stops))
    x = apply_logit_bias(x, params.logit_bias)
    return apply_penalties(x, prompt_token_ids, output_token_ids, params.presence_penalty,
                           params.frequency_penalty, params.repetition_penalty)
