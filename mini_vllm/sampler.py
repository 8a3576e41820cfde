"""Sampling parameters and a per-request, batch-independent sampler.

Each request draws from its own ``np.random.Generator``: seeded from ``params.seed``
when given, otherwise from the engine seed and the request id. A request's tokens
therefore never depend on which other requests share its step, which is what lets the
engine tests compare batched, chunked and preempted runs token for token.

Upstream: vllm/v1/sample/sampler.py:238@0decac0 (Sampler.sample).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import numpy as np

# Temperatures below this are greedy, as vllm/sampling_params.py:25@0decac0 (_SAMPLING_EPS).
_SAMPLING_EPS = 1e-5


@dataclass(frozen=True)
class SamplingParams:
    """The knobs of one request. Validation mirrors
    vllm/sampling_params.py:452@0decac0 (SamplingParams._verify_args): each bad value
    raises ValueError naming its field. ``top_k`` of 0 or -1 disables top-k.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int | None = None
    max_tokens: int = 16
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    # Phase 12: a grammar the output must match (mini_vllm.structured_output).
    structured_outputs: "StructuredOutputsParams | None" = None

    def __post_init__(self) -> None:
        def bad(field: str, rule: str) -> ValueError:
            return ValueError(f"{field} {rule}, got {getattr(self, field)!r}")

        if not _is_real(self.temperature) or not self.temperature >= 0.0:
            raise bad("temperature", "must be a non-negative number")
        if not _is_int(self.top_k) or self.top_k < -1:
            raise bad("top_k", "must be an int: 0 or -1 (disabled) or >= 1")
        if not _is_real(self.top_p) or not 0.0 < self.top_p <= 1.0:
            raise bad("top_p", "must be in (0, 1]")
        if not _is_real(self.min_p) or not 0.0 <= self.min_p <= 1.0:
            raise bad("min_p", "must be in [0, 1]")
        if self.seed is not None and (not _is_int(self.seed) or self.seed < 0):
            # numpy generators take seeds >= 0 (upstream's torch generator also takes negatives).
            raise bad("seed", "must be an int >= 0 or None")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise bad("max_tokens", "must be an int >= 1")
        stop = tuple(self.stop_token_ids)
        if not all(_is_int(t) and t >= 0 for t in stop):
            raise bad("stop_token_ids", "must be non-negative ints")
        object.__setattr__(self, "stop_token_ids", stop)
        if not isinstance(self.ignore_eos, bool):
            raise bad("ignore_eos", "must be a bool")
        from mini_vllm.structured_output import StructuredOutputsParams

        if self.structured_outputs is not None and not isinstance(self.structured_outputs, StructuredOutputsParams):
            raise bad("structured_outputs", "must be a StructuredOutputsParams or None")

    @property
    def greedy(self) -> bool:
        return self.temperature < _SAMPLING_EPS

    def replace(self, **changes) -> "SamplingParams":
        return dataclasses.replace(self, **changes)


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
        return np.random.default_rng(params.seed)
    return np.random.default_rng(stable_request_seed(engine_seed, request_id))


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

    Order: temperature, min-p, top-k, top-p, then one inverse-CDF draw. That is
    upstream's order (min-p runs as an argmax-invariant logits processor before top-k/p,
    vllm/v1/sample/sampler.py:277@0decac0 ("for processor in sampling_metadata.logitsprocs")).
    Upstream draws by dividing probabilities by exponential noise and taking the argmax
    (vllm/v1/sample/ops/topk_topp_sampler.py:395@0decac0 (random_sample)) to avoid a
    GPU sync; the inverse CDF used here is the same distribution and easier to check
    by hand: ``u = generator.random()``, token = first index whose cumulative
    probability exceeds ``u``. Without a generator, one is made from ``params.seed``
    (unseeded: not reproducible); the engine always passes the request's own.
    """

    def sample(
        self,
        logits: np.ndarray,
        params: SamplingParams,
        generator: np.random.Generator | None = None,
    ) -> int:
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 1:
            raise ValueError(f"sample() takes one row of logits [V], got shape {logits.shape}")
        problem = check_logits(logits)
        if problem:
            raise ValueError(problem)
        if params.greedy:
            return int(np.argmax(logits))
        if generator is None:
            generator = np.random.default_rng(params.seed)
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
