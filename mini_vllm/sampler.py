"""Sampling parameters and a per-request, batch-independent sampler.

Each request draws from its own ``np.random.Generator``: seeded from ``params.seed``
when given, otherwise from the engine seed and the request id. A request's tokens
therefore never depend on which other requests share its step, which is what lets the
engine tests compare batched, chunked and preempted runs token for token.

Before the draw, ``mini_vllm.logits_processor`` applies the request's allowed ids, bad
words, ``min_tokens``, ``logit_bias`` and penalties, which is why ``Sampler.sample`` takes
the request's prompt and output token ids.

Upstream: vllm/v1/sample/sampler.py:238@0decac0 (Sampler.sample).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from mini_vllm.logits_processor import apply_logits_processors

# Temperatures below this are greedy, as vllm/sampling_params.py:25@0decac0 (_SAMPLING_EPS).
_SAMPLING_EPS = 1e-5


@dataclass(frozen=True)
class SamplingParams:
    """The knobs of one request. Validation mirrors
    vllm/sampling_params.py:452@0decac0 (SamplingParams._verify_args): each bad value
    raises ValueError naming its field. ``top_k`` of 0 or -1 disables top-k.

    ``n`` > 1 asks for n completions of one prompt (``mini_vllm.parallel_sampling``);
    greedy requests must have n == 1, as
    vllm/sampling_params.py:552@0decac0 (SamplingParams._verify_greedy_sampling) insists. ``bad_words`` holds token-id
    sequences; upstream takes strings and tokenizes them itself
    (vllm/sampling_params.py:587@0decac0 ("if not self.bad_words:")). ``logprobs`` asks for the
    top-k raw log-probabilities of each sampled position (what beam search reads).
    Token ids are checked against the vocabulary when the engine admits the request
    (``verify_vocab``).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int | None = None
    max_tokens: int = 16
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    min_tokens: int = 0
    logit_bias: dict[int, float] | None = None
    allowed_token_ids: tuple[int, ...] | None = None
    bad_words: tuple[tuple[int, ...], ...] = ()
    logprobs: int | None = None
    # Phase 12: a grammar the output must match (mini_vllm.structured_output).
    structured_outputs: "StructuredOutputsParams | None" = None

    def __post_init__(self) -> None:
        def bad(field: str, rule: str) -> ValueError:
            return ValueError(f"{field} {rule}, got {getattr(self, field)!r}")

        if not _is_real(self.temperature) or not self.temperature >= 0.0:
            raise bad("temperature", "must be a non-negative number")
        if not _is_real(self.top_p) or not 0.0 < self.top_p <= 1.0:
            raise bad("top_p", "must be in (0, 1]")
        if not _is_int(self.top_k) or self.top_k < -1:
            raise bad("top_k", "must be an int: 0 or -1 (disabled) or >= 1")
        if not _is_real(self.min_p) or not 0.0 <= self.min_p <= 1.0:
            raise bad("min_p", "must be in [0, 1]")
        if self.seed is not None and not _is_int(self.seed):
            raise bad("seed", "must be an int or None")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise bad("max_tokens", "must be an int >= 1")
        stop = tuple(self.stop_token_ids)
        if not all(_is_int(t) and t >= 0 for t in stop):
            raise bad("stop_token_ids", "must be non-negative ints")
        object.__setattr__(self, "stop_token_ids", stop)
        if not isinstance(self.ignore_eos, bool):
            raise bad("ignore_eos", "must be a bool")
        if not _is_int(self.n) or self.n < 1:
            raise bad("n", "must be an int >= 1")
        if self.n > 1 and self.greedy:
            raise bad("n", "must be 1 when temperature is 0 (greedy): n greedy copies would be identical")
        for field in ("presence_penalty", "frequency_penalty"):
            if not _is_real(getattr(self, field)) or not -2.0 <= getattr(self, field) <= 2.0:
                raise bad(field, "must be in [-2, 2]")
        if not _is_real(self.repetition_penalty) or not self.repetition_penalty > 0.0:
            raise bad("repetition_penalty", "must be a number > 0 (1 disables it)")
        if not _is_int(self.min_tokens) or not 0 <= self.min_tokens <= self.max_tokens:
            raise bad("min_tokens", f"must be an int in [0, max_tokens={self.max_tokens}]")
        if self.logit_bias is not None:
            if not isinstance(self.logit_bias, dict) or not all(
                    _is_int(t) and t >= 0 and _is_real(b) for t, b in self.logit_bias.items()):
                raise bad("logit_bias", "must be a dict of token id (int >= 0) to a finite bias")
            # Clamped to [-100, 100] as upstream's SamplingParams.from_optional does.
            object.__setattr__(self, "logit_bias", {int(t): min(100.0, max(-100.0, float(b)))
                                                     for t, b in self.logit_bias.items()})
        if self.allowed_token_ids is not None:
            allowed = _id_tuple(self.allowed_token_ids)
            if not allowed:
                raise bad("allowed_token_ids", "must be None or a non-empty sequence of token ids (ints >= 0)")
            object.__setattr__(self, "allowed_token_ids", allowed)
        words = tuple(_id_tuple(w) for w in self.bad_words) if _is_seq(self.bad_words) else None
        if words is None or not all(words):
            raise bad("bad_words", "must be a sequence of non-empty token-id sequences (ints >= 0)")
        object.__setattr__(self, "bad_words", words)
        if self.logprobs is not None and (not _is_int(self.logprobs) or self.logprobs < 0):
            raise bad("logprobs", "must be None or an int >= 0")
        from mini_vllm.structured_output import StructuredOutputsParams

        if self.structured_outputs is not None and not isinstance(self.structured_outputs, StructuredOutputsParams):
            raise bad("structured_outputs", "must be a StructuredOutputsParams or None")

    def verify_vocab(self, vocab_size: int) -> None:
        """Every token id a field names must exist, as upstream's
        vllm/sampling_params.py:727@0decac0 (SamplingParams._validate_logit_bias) checks."""
        named = {"stop_token_ids": self.stop_token_ids, "logit_bias": tuple(self.logit_bias or ()),
                 "allowed_token_ids": self.allowed_token_ids or (),
                 "bad_words": tuple(t for w in self.bad_words for t in w)}
        for field, ids in named.items():
            bad_ids = sorted({t for t in ids if t >= vocab_size})
            if bad_ids:
                raise ValueError(f"{field} names token ids {bad_ids[:5]} outside the vocabulary [0, {vocab_size})")

    @property
    def greedy(self) -> bool:
        return self.temperature < _SAMPLING_EPS

    def replace(self, **changes) -> "SamplingParams":
        return dataclasses.replace(self, **changes)


def _is_seq(x) -> bool:
    return isinstance(x, (list, tuple, np.ndarray))


def _id_tuple(x) -> tuple[int, ...] | None:
    """``x`` as a tuple of token ids, or None if it is not a sequence of ints >= 0."""
    if not _is_seq(x) or not all(_is_int(t) and t >= 0 for t in x):
        return None
    return tuple(int(t) for t in x)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Max-subtracted softmax in float64 over the last axis; -inf entries get 0."""
    x = np.asarray(logits, dtype=np.float64)
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=-1, keepdims=True)


def apply_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep every logit >= the k-th largest; ties at the boundary all survive, as in
    vllm/v1/sample/ops/topk_topp_sampler.py:372@0decac0 (apply_top_k_only)."""
    logits = np.asarray(logits, dtype=np.float64)
    if k <= 0 or k >= logits.shape[-1]:
        return logits.copy()
    kth = np.partition(logits, -k)[-k]
    return np.where(logits >= kth, logits, -np.inf)


def apply_top_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Keep the smallest highest-probability set whose mass reaches ``p``, including the
    token that crosses it. Equal probabilities are ranked lower token id first.

    Upstream sorts ascending and drops the prefix whose mass is <= 1 - p
    (vllm/v1/sample/ops/topk_topp_sampler.py:363@0decac0 ("top_p_mask = probs_sum <= 1 - p")),
    which selects the same set up to ties.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if p >= 1.0:
        return logits.copy()
    order = np.argsort(-logits, kind="stable")
    cum = np.cumsum(softmax(logits)[order])
    reached = np.nonzero(cum >= p)[0]
    n_keep = int(reached[0]) + 1 if reached.size else len(order)
    out = np.full_like(logits, -np.inf)
    keep = order[:n_keep]
    out[keep] = logits[keep]
    return out


def apply_min_p(logits: np.ndarray, min_p: float) -> np.ndarray:
    """Drop tokens whose probability is below ``min_p`` times the top probability, as
    vllm/v1/sample/logits_processor/builtin.py:101@0decac0 (MinPLogitsProcessor.apply)."""
    logits = np.asarray(logits, dtype=np.float64)
    if min_p <= 0.0:
        return logits.copy()
    probs = softmax(logits)
    return np.where(probs < min_p * probs.max(), -np.inf, logits)


def stable_request_seed(engine_seed: int, request_id: str) -> int:
    """A process-independent 64-bit seed for (engine seed, request id). Python's
    ``hash(str)`` is salted per process, so it cannot be used here."""
    digest = hashlib.sha256(f"{engine_seed}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def make_generator(params: SamplingParams, engine_seed: int, request_id: str) -> np.random.Generator:
    """The request's private RNG: ``params.seed`` wins, else (engine seed, request id)."""
    if params.seed is not None:
        return seeded_generator(params.seed)
    return np.random.default_rng(stable_request_seed(engine_seed, request_id))


def seeded_generator(seed: int) -> np.random.Generator:
    """A generator for a request's own ``seed``. Any int is a seed, negative ones too, as
    upstream's ``torch.Generator.manual_seed`` takes them, reading the value as 64 bits
    (-1 is 2**64 - 1); numpy wants the unsigned value, so it gets the same 64 bits."""
    return np.random.default_rng(int(seed) % 2**64)


def check_logits(row: np.ndarray) -> str | None:
    """Why one row of logits cannot be sampled, or None. ``-inf`` marks a masked token
    and is fine; NaN or ``+inf`` means the model produced invalid numbers, and a row
    that is ``-inf`` everywhere leaves no token to pick. Upstream samples such rows
    without a check; mini_vllm refuses them instead of returning token 0."""
    if np.isnan(row).any():
        return f"logits contain NaN at token ids {np.flatnonzero(np.isnan(row))[:5].tolist()}"
    if np.isposinf(row).any():
        return f"logits contain +inf at token ids {np.flatnonzero(np.isposinf(row))[:5].tolist()}"
    if not np.isfinite(row).any():
        return "every logit is -inf: no token can be sampled"
    return None


class Sampler:
    """Turns one row of logits into one token.

    Order: the logits processors (allowed ids, bad words, min_tokens, logit_bias,
    penalties; ``mini_vllm.logits_processor``), then greedy's argmax, else temperature,
    min-p, top-k, top-p and one inverse-CDF draw. That is upstream's order: the
    processors run before the greedy/random split
    (vllm/v1/sample/sampler.py:93@0decac0 ("logits = self.apply_logits_processors(")) and min-p
    runs as an argmax-invariant processor after temperature, before top-k/p
    (vllm/v1/sample/sampler.py:277@0decac0 ("for processor in sampling_metadata.logitsprocs.argmax_invariant")).
    Upstream draws by dividing probabilities by exponential noise and taking the argmax
    (vllm/v1/sample/ops/topk_topp_sampler.py:395@0decac0 (random_sample)) to avoid a
    GPU sync; the inverse CDF used here is the same distribution and easier to check
    by hand: ``u = generator.random()``, token = first index whose cumulative
    probability exceeds ``u``. Without a generator, one is made from ``params.seed``
    (unseeded: not reproducible); the engine always passes the request's own, and the
    request's prompt and output token ids and EOS id, which penalties, bad words and
    min_tokens read.
    """

    def sample(
        self,
        logits: np.ndarray,
        params: SamplingParams,
        generator: np.random.Generator | None = None,
        prompt_token_ids=(),
        output_token_ids=(),
        eos_token_id: int | None = None,
    ) -> int:
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 1:
            raise ValueError(f"sample() takes one row of logits [V], got shape {logits.shape}")
        problem = check_logits(logits)
        if problem:
            raise ValueError(problem)
        logits = apply_logits_processors(logits, params, prompt_token_ids, output_token_ids, eos_token_id)
        if not np.isfinite(logits).any():
            raise ValueError("the request's logits processors masked every token: nothing can be sampled "
                             "(check allowed_token_ids, bad_words and min_tokens against each other)")
        if params.greedy:
            return int(np.argmax(logits))
        if generator is None:
            generator = np.random.default_rng() if params.seed is None else seeded_generator(params.seed)
        x = logits / params.temperature
        x = apply_min_p(x, params.min_p)
        x = apply_top_k(x, params.top_k)
        x = apply_top_p(x, params.top_p)
        probs = softmax(x)
        cum = np.cumsum(probs)
        idx = int(np.searchsorted(cum, generator.random(), side="right"))
        if idx >= len(cum):  # u landed in the float rounding gap above cum[-1]
            idx = int(np.nonzero(probs)[0][-1])
        return idx

    @staticmethod
    def compute_logprobs(logits: np.ndarray, num_logprobs: int, token_id: int) -> dict[int, float]:
        """The ``num_logprobs`` most likely tokens and the sampled one, with their
        log-probabilities under the *raw* logits (before any processor or temperature),
        upstream's default ``raw_logprobs`` mode:
        vllm/v1/sample/sampler.py:82@0decac0 ("raw_logprobs = self.compute_logprobs(logits)"). Ties rank lower ids first."""
        x = np.asarray(logits, dtype=np.float64)
        m = x.max()
        logp = x - m - np.log(np.exp(x - m).sum())
        top = np.argsort(-logp, kind="stable")[:num_logprobs].tolist()
        return {int(t): float(logp[t]) for t in dict.fromkeys(top + [int(token_id)])}

    def sample_batch(
        self,
        logits: np.ndarray,
        params_list: list[SamplingParams],
        generators: list[np.random.Generator | None],
    ) -> list[int]:
        logits = np.asarray(logits)
        if logits.ndim != 2 or not (logits.shape[0] == len(params_list) == len(generators)):
            raise ValueError(
                f"sample_batch needs logits [B, V] with B == len(params_list) == "
                f"len(generators); got {logits.shape}, {len(params_list)}, {len(generators)}"
            )
        return [self.sample(row, p, g) for row, p, g in zip(logits, params_list, generators)]
