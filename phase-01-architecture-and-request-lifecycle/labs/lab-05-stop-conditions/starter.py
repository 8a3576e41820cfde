"""Lab 01-05: how a request ends, and what the caller is told. Your work: four functions.

``check_stop`` follows upstream's order,
vllm/v1/core/sched/utils.py:94@0decac0 (check_stop): EOS first (upstream has no EOS id
at all when ``ignore_eos`` is set: vllm/sampling_params.py:562@0decac0 ("if not self.ignore_eos:")),
then ``stop_token_ids``, then the length caps. Because EOS is checked before the length
cap, an EOS that lands exactly on ``max_tokens`` reports "stop".
"""
from __future__ import annotations

from course.lab_support.phase_01 import print_stop_cases
from mini_vllm import Request, RequestStatus, SamplingParams

# Upstream's names for mini_vllm's statuses (vllm/v1/request.py:315@0decac0 (RequestStatus)).
# Only the length state is spelled differently:
# vllm/v1/request.py:327@0decac0 (FINISHED_LENGTH_CAPPED).


def check_stop(request: Request, max_model_len: int | None = None) -> bool:
    """Set a finished status if the token just appended ends the request; return
    whether it did. Order: EOS (unless ``ignore_eos``), stop token ids (recording
    ``stop_reason``), then ``max_tokens`` / ``max_model_len``."""
    raise NotImplementedError("TODO 1: decide whether the last token ends the request (README task 1)")


def run_until_stop(token_stream: list[int], eos_token_id: int, params: SamplingParams,
                   prompt: tuple[int, ...] = (0,), max_model_len: int | None = None) -> Request:
    """Replay the update stage with scripted tokens: append one, check, stop at the first
    check that fires. A stream that runs dry leaves the request RUNNING."""
    raise NotImplementedError("TODO 2: replay the update stage on a scripted stream (README task 2)")


def finish_reason(status: RequestStatus) -> str | None:
    """The OpenAI-style ``finish_reason`` of a status, or None while the request is alive
    (upstream's map: vllm/v1/request.py:349@0decac0 (_FINISHED_REASON_MAP))."""
    raise NotImplementedError("TODO 3: map a status to the caller's finish reason (README task 3)")


def upstream_status_name(status: RequestStatus) -> str:
    """The name the same state has in vLLM 0.22.1's ``RequestStatus``."""
    raise NotImplementedError("TODO 4: name a status as vLLM spells it (README task 4)")


if __name__ == "__main__":
    print_stop_cases(run_until_stop, finish_reason, upstream_status_name)
