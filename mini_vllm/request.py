"""A request and its lifecycle states: the two counters every other module reads.

The engine is a race between ``num_tokens`` (prompt plus everything sampled so far) and
``num_computed_tokens`` (how many of those already have K/V in the cache). Prefill is a
large gap, decode a gap of one; the scheduler only ever tries to close the gap.

Upstream: vllm/v1/request.py:59@0decac0 (Request), whose counters are
vllm/v1/request.py:239@0decac0 (Request.num_tokens) and
vllm/v1/request.py:145@0decac0 ("self.num_computed_tokens = 0").
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from mini_vllm.sampler import SamplingParams


class RequestStatus(enum.IntEnum):
    """Lifecycle of a request. The order is load-bearing: every value after PREEMPTED is a
    finished state, so ``is_finished`` is one comparison.

    Upstream (vllm/v1/request.py:315@0decac0 (RequestStatus)) has more members: three
    WAITING_FOR_* states (grammar compile, remote KV transfer, streaming input),
    FINISHED_ERROR and FINISHED_REPETITION, and it spells the length state
    FINISHED_LENGTH_CAPPED. mini_vllm keeps the skeleton in the same relative order.
    """

    WAITING = enum.auto()
    RUNNING = enum.auto()
    PREEMPTED = enum.auto()
    FINISHED_STOPPED = enum.auto()
    FINISHED_LENGTH = enum.auto()
    FINISHED_ABORTED = enum.auto()
    FINISHED_IGNORED = enum.auto()
    FINISHED_ERROR = enum.auto()

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def is_finished(status: "RequestStatus") -> bool:
        """Same trick as vllm/v1/request.py:337@0decac0 (RequestStatus.is_finished)."""
        return status > RequestStatus.PREEMPTED

    @staticmethod
    def get_finished_reason(status: "RequestStatus") -> str | None:
        """OpenAI-style finish reason; None while the request is alive."""
        return _FINISHED_REASON_MAP.get(status)


# An ignored request had a prompt longer than the model allows; upstream reports that as
# "length" too: vllm/v1/request.py:349@0decac0 (_FINISHED_REASON_MAP).
_FINISHED_REASON_MAP = {
    RequestStatus.FINISHED_STOPPED: "stop",
    RequestStatus.FINISHED_LENGTH: "length",
    RequestStatus.FINISHED_ABORTED: "abort",
    RequestStatus.FINISHED_IGNORED: "length",
    RequestStatus.FINISHED_ERROR: "error",
}


def token_id_list(token_ids, what: str = "prompt_token_ids") -> list[int]:
    """``token_ids`` as a list of plain ints, or a ValueError naming ``what``: a non-empty
    sequence (list, tuple or 1-D integer array) of ints >= 0. Floats, bools and strings
    are refused rather than truncated or cast."""
    if isinstance(token_ids, (str, bytes)) or not hasattr(token_ids, "__iter__"):
        raise ValueError(f"{what} must be a sequence of ints, got {type(token_ids).__name__}")
    if getattr(token_ids, "ndim", 1) != 1:
        raise ValueError(f"{what} must be 1-D, got shape {getattr(token_ids, 'shape', None)}")
    out = []
    for i, t in enumerate(token_ids):
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)):
            raise ValueError(f"{what}[{i}] must be an int token id, got {t!r} ({type(t).__name__})")
        if t < 0:
            raise ValueError(f"{what}[{i}] must be >= 0, got {int(t)}")
        out.append(int(t))
    if not out:
        raise ValueError(f"{what} is empty: at least one token is needed to produce logits")
    return out


class Request:
    """One generation request as the scheduler sees it.

    ``block_hashes`` holds the chained hash of every *full* block of ``all_token_ids``;
    it grows as tokens are appended, exactly like upstream's block hasher callback
    (vllm/v1/request.py:229@0decac0 (Request.update_block_hashes)). The KV cache manager
    attaches a hasher for its block size on first contact if the caller did not pass one.

    The token lists are exposed as plain lists for speed: treat them as read-only and
    grow them only through ``append_output_token_ids`` (upstream wraps them in a
    ConstantList for the same reason).
    """

    def __init__(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        sampling_params: "SamplingParams",
        eos_token_id: int | None = None,
        arrival_time: float = 0.0,
        block_hasher: Callable[["Request"], list[bytes]] | None = None,
    ) -> None:
        if not isinstance(request_id, str) or not request_id:
            raise ValueError(f"request_id must be a non-empty str, got {request_id!r}")
        prompt = token_id_list(prompt_token_ids, f"request {request_id!r}: prompt_token_ids")
        self.request_id = request_id
        self.sampling_params = sampling_params
        self.max_tokens = sampling_params.max_tokens
        self.eos_token_id = eos_token_id
        self.arrival_time = arrival_time
        self.status = RequestStatus.WAITING
        self.stop_reason: int | str | None = None
        self.prompt_token_ids = prompt
        self.num_prompt_tokens = len(prompt)
        self._output_token_ids: list[int] = []
        self._all_token_ids: list[int] = list(prompt)
        self.num_computed_tokens = 0
        self.num_preemptions = 0
        # One {token id: log-prob} dict per sampled token, when params.logprobs is set.
        self.logprobs: list[dict[int, float]] = []
        # Prefix-cache hit (tokens) at first admission; -1 until then, as upstream.
        self.num_cached_tokens = -1
        self.block_hashes: list[bytes] = []
        self.block_hasher = block_hasher
        self.update_block_hashes()
        # Phase 12: the grammar state of a constrained request, as upstream's
        # vllm/v1/request.py:87@0decac0 ("self.structured_output_request = StructuredOutputRequest.from_sampling_params(").
        from mini_vllm.structured_output import StructuredOutputRequest

        self.structured_output_request = StructuredOutputRequest.from_sampling_params(sampling_params)

    @property
    def use_structured_output(self) -> bool:
        return self.structured_output_request is not None

    @property
    def output_token_ids(self) -> list[int]:
        return self._output_token_ids

    @property
    def all_token_ids(self) -> list[int]:
        return self._all_token_ids

    @property
    def num_tokens(self) -> int:
        return len(self._all_token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self._output_token_ids)

    def append_output_token_ids(self, token_ids: int | list[int]) -> None:
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        self._output_token_ids.extend(token_ids)
        self._all_token_ids.extend(token_ids)
        self.update_block_hashes()

    def update_block_hashes(self) -> None:
        if self.block_hasher is not None:
            self.block_hashes.extend(self.block_hasher(self))

    def is_finished(self) -> bool:
        return RequestStatus.is_finished(self.status)

    def get_finished_reason(self) -> str | None:
        return RequestStatus.get_finished_reason(self.status)

    def __repr__(self) -> str:
        return (
            f"Request({self.request_id!r}, {self.status.name}, "
            f"computed={self.num_computed_tokens}/{self.num_tokens})"
        )


def check_stop(request: Request, max_model_len: int | None = None) -> bool:
    """Set a finished status if the last appended token ends the request.

    Checks run in upstream's order (vllm/v1/core/sched/utils.py:94@0decac0 (check_stop)):
    EOS (skipped when ``ignore_eos``), then ``stop_token_ids`` (which records
    ``stop_reason``), then the length caps. Below ``min_tokens`` nothing stops the request
    (the sampler has masked EOS and the stop ids anyway) except ``max_model_len``, which
    upstream's early return would also skip. Upstream also has repetition detection;
    mini_vllm does not.
    """
    params = request.sampling_params
    if request.num_output_tokens == 0:
        return False
    if request.num_output_tokens < params.min_tokens and (max_model_len is None or request.num_tokens < max_model_len):
        return False
    last = request.output_token_ids[-1]
    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:
        request.status = RequestStatus.FINISHED_STOPPED
        return True
    if last in params.stop_token_ids:
        request.status = RequestStatus.FINISHED_STOPPED
        request.stop_reason = last
        return True
    if request.num_output_tokens >= request.max_tokens or (
        max_model_len is not None and request.num_tokens >= max_model_len
    ):
        request.status = RequestStatus.FINISHED_LENGTH
        return True
    return False
