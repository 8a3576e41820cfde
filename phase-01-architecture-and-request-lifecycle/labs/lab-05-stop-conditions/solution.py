"""Lab 01-05 reference: how a request ends, and what the caller is told.

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
    params = request.sampling_params
    if request.num_output_tokens == 0:
        return False
    last = request.output_token_ids[-1]
    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:
        request.status = RequestStatus.FINISHED_STOPPED
        return True
    if last in params.stop_token_ids:
        request.status = RequestStatus.FINISHED_STOPPED
        request.stop_reason = last
        return True
    if request.num_output_tokens >= params.max_tokens or (
        max_model_len is not None and request.num_tokens >= max_model_len
    ):
        request.status = RequestStatus.FINISHED_LENGTH
        return True
    return False


def run_until_stop(token_stream: list[int], eos_token_id: int, params: SamplingParams,
                   prompt: tuple[int, ...] = (0,), max_model_len: int | None = None) -> Request:
    """Replay the update stage with scripted tokens: append one, check, stop at the first
    check that fires. A stream that runs dry leaves the request RUNNING."""
    request = Request("scripted", list(prompt), params, eos_token_id=eos_token_id)
    request.status = RequestStatus.RUNNING
    for token in token_stream:
        request.append_output_token_ids(token)
        if check_stop(request, max_model_len):
            break
    return request


def finish_reason(status: RequestStatus) -> str | None:
    """The OpenAI-style ``finish_reason`` of a status, or None while the request is alive
    (upstream's map: vllm/v1/request.py:349@0decac0 (_FINISHED_REASON_MAP))."""
    return {
        RequestStatus.FINISHED_STOPPED: "stop",
        RequestStatus.FINISHED_LENGTH: "length",
        RequestStatus.FINISHED_ABORTED: "abort",
        RequestStatus.FINISHED_IGNORED: "length",
        RequestStatus.FINISHED_ERROR: "error",
    }.get(status)


def upstream_status_name(status: RequestStatus) -> str:
    """The name the same state has in vLLM 0.22.1's ``RequestStatus``."""
    if status == RequestStatus.FINISHED_LENGTH:
        return "FINISHED_LENGTH_CAPPED"
    return status.name


if __name__ == "__main__":
    print_stop_cases(run_until_stop, finish_reason, upstream_status_name)
