"""Lab 09-04 reference: per-request random generators, and the proof that a seeded
request's tokens do not depend on who shares its batch.

The engine keeps one ``np.random.Generator`` per request, made at admission from
``params.seed`` or, unseeded, from (engine seed, request id), and drops it when the
request finishes. ``SharedRNGSampler`` is the natural wrong design, given as the control.
"""

from __future__ import annotations

import numpy as np

from mini_vllm.sampler import Sampler, SamplingParams, stable_request_seed


def request_generator(params: SamplingParams, engine_seed: int, request_id: str) -> np.random.Generator:
    """The request's private stream: from ``params.seed`` when set, else from
    ``stable_request_seed(engine_seed, request_id)`` (never Python's salted ``hash``)."""
    seed = params.seed if params.seed is not None else stable_request_seed(engine_seed, request_id)
    return np.random.default_rng(seed)


class PerRequestSampler:
    """One generator per live request, keyed by request id."""

    def __init__(self, engine_seed: int = 0) -> None:
        self.engine_seed = engine_seed
        self.generators: dict[str, np.random.Generator] = {}
        self.sampler = Sampler()

    def add_request(self, request_id: str, params: SamplingParams) -> None:
        """Create the request's generator; a live id cannot be added twice (ValueError)."""
        if request_id in self.generators:
            raise ValueError(f"request {request_id!r} is already live")
        self.generators[request_id] = request_generator(params, self.engine_seed, request_id)

    def sample(self, request_id: str, logits: np.ndarray, params: SamplingParams, **context) -> int:
        """One token for the request, drawn from its own generator (greedy draws
        nothing). ``context``: prompt_token_ids, output_token_ids, eos_token_id."""
        return self.sampler.sample(logits, params, self.generators[request_id], **context)

    def finish_request(self, request_id: str) -> None:
        """Forget the request's generator, so a recycled id starts a fresh stream."""
        del self.generators[request_id]

    def sample_batch(self, request_ids: list[str], logits: np.ndarray, params_list: list[SamplingParams]) -> list[int]:
        """One token per row of ``logits`` [B, V], row i for ``request_ids[i]``."""
        if not len(request_ids) == len(params_list) == len(logits):
            raise ValueError(f"{len(logits)} rows of logits for {len(request_ids)} requests "
                             f"and {len(params_list)} params")
        return [self.sample(rid, row, p) for rid, row, p in zip(request_ids, logits, params_list)]


class SharedRNGSampler:
    """The control: one generator for the whole engine. Each draw moves the stream for
    everyone after it, so a request's tokens depend on its neighbours."""

    def __init__(self, seed: int = 0) -> None:
        self.generator = np.random.default_rng(seed)
        self.sampler = Sampler()

    def add_request(self, request_id: str, params: SamplingParams) -> None:
        pass

    def sample(self, request_id: str, logits: np.ndarray, params: SamplingParams, **context) -> int:
        return self.sampler.sample(logits, params, self.generator, **context)

    def finish_request(self, request_id: str) -> None:
        pass


def decode(sampler, model, requests: dict[str, tuple[list[int], SamplingParams]], order=None) -> dict[str, list[int]]:
    """Generate every request to ``max_tokens`` (EOS ignored), one token per request per
    step, sampling the requests of each step in ``order`` (default: insertion order).
    The model runs unbatched (``forward_dense``), so only the sampler can couple them."""
    order = list(order or requests)
    out = {rid: [] for rid in requests}
    states = {}
    for rid in order:
        sampler.add_request(rid, requests[rid][1])
        states[rid] = (model.empty_kv_state(), list(requests[rid][0]), 0)
    while states:
        for rid in [r for r in order if r in states]:
            kv, pending, start = states[rid]
            prompt, params = requests[rid]
            logits = model.forward_dense(pending, start, kv)
            token = sampler.sample(rid, logits, params, prompt_token_ids=prompt, output_token_ids=out[rid])
            out[rid].append(token)
            if len(out[rid]) >= params.max_tokens:
                sampler.finish_request(rid)
                del states[rid]
            else:
                states[rid] = (kv, [token], start + len(pending))
    return out


def report() -> dict[str, object]:
    from mini_vllm.model import get_model

    model = get_model("tiny")
    a = ([72, 101, 108, 108, 111], SamplingParams(seed=7, max_tokens=6))
    neighbours = {f"n{i}": ([40 + i, 41, 42], SamplingParams(max_tokens=6)) for i in range(5)}
    alone = decode(PerRequestSampler(), model, {"A": a})["A"]
    crowd = decode(PerRequestSampler(), model, {**neighbours, "A": a})["A"]
    shared_alone = decode(SharedRNGSampler(seed=7), model, {"A": a})["A"]
    shared_crowd = decode(SharedRNGSampler(seed=7), model, {**neighbours, "A": a})["A"]
    return {"per_request_alone": alone, "per_request_with_5": crowd,
            "shared_alone": shared_alone, "shared_with_5": shared_crowd}


if __name__ == "__main__":
    for name, value in report().items():
        print(f"{name:20s} {value}")
