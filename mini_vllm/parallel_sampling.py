"""``n > 1``: one prompt, n independent completions.

The engine core never sees ``n``. The front end turns the request into n child
requests with ids ``"{index}_{parent id}"`` and ``n = 1``, queues them one after the
other, and gathers their outputs back into one ``RequestOutput`` when the last child
finishes: vllm/v1/engine/llm_engine.py:270@0decac0 ("# Fan out child requests (for n>1).").
The children's prompts are identical, so with prefix caching every child after the first
finds the first child's full prompt blocks already cached (they are cached the moment
they are allocated), and prefills only the cache-ineligible rest: n children of a P-token
prompt with block size B cost P + (n - 1)(P - floor((P - 1) / B) * B) prefill tokens
instead of nP.

Seeds: a seeded parent gives child i the seed ``seed + i``, so the n completions differ
from each other yet the whole request reproduces; unseeded children draw from the engine
seed and their own ids:
vllm/v1/engine/parallel_sampling.py:52@0decac0 (ParentRequest._get_child_sampling_params).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mini_vllm.engine import RequestOutput
    from mini_vllm.sampler import SamplingParams


class ParentRequest:
    """Bookkeeping for one ``n > 1`` request: its children's ids and params, and their
    finished outputs until all n are in (upstream's FINAL_ONLY aggregation,
    vllm/v1/engine/parallel_sampling.py:100@0decac0 (ParentRequest.get_outputs))."""

    def __init__(self, request_id: str, sampling_params: "SamplingParams") -> None:
        self.request_id = request_id
        self.sampling_params = sampling_params
        self.child_requests: set[str] = set()
        self.output_aggregator: list["RequestOutput | None"] = [None] * sampling_params.n

    @property
    def n(self) -> int:
        return self.sampling_params.n

    def _get_child_sampling_params(self, index: int) -> "SamplingParams":
        seed = self.sampling_params.seed
        return self.sampling_params.replace(n=1, seed=None if seed is None else seed + index)

    def get_child_info(self, index: int) -> tuple[str, "SamplingParams"]:
        """Child ``index``'s request id and sampling params."""
        child_id = f"{index}_{self.request_id}"
        self.child_requests.add(child_id)
        return child_id, self._get_child_sampling_params(index)

    def add_output(self, index: int, child_id: str, output: "RequestOutput") -> "RequestOutput | None":
        """Record a finished child; return the parent's output once all n are in."""
        self.child_requests.discard(child_id)
        self.output_aggregator[index] = output
        if self.child_requests:
            return None
        return merge_outputs(self.request_id, self.output_aggregator)


def merge_outputs(request_id: str, children: list["RequestOutput"]) -> "RequestOutput":
    """One ``RequestOutput`` whose ``outputs`` are the n children's completions, in index
    order. The flat fields (tokens, text, finish reason, status, metrics) are child 0's;
    ``num_cached_tokens`` is the children's sum, which for n children of one prompt is the
    prefix-cache saving of the whole request."""
    import dataclasses

    from mini_vllm.engine import CompletionOutput

    first = children[0]
    completions = [CompletionOutput(i, c.text, list(c.output_token_ids), c.finish_reason, c.stop_reason, c.logprobs)
                   for i, c in enumerate(children)]
    return dataclasses.replace(first, request_id=request_id, completions=completions,
                               num_cached_tokens=sum(c.num_cached_tokens for c in children))
