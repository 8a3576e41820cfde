"""Request counters, RequestStatus ordering, check_stop, and the byte tokenizer."""

import pytest

from mini_vllm.request import Request, RequestStatus, check_stop
from mini_vllm.sampler import SamplingParams
from mini_vllm.tokenizer import ByteTokenizer


def test_status_order_makes_everything_after_preempted_finished():
    order = [RequestStatus.WAITING, RequestStatus.RUNNING, RequestStatus.PREEMPTED, RequestStatus.FINISHED_STOPPED,
             RequestStatus.FINISHED_LENGTH, RequestStatus.FINISHED_ABORTED, RequestStatus.FINISHED_IGNORED,
             RequestStatus.FINISHED_ERROR]
    assert sorted(RequestStatus) == order
    assert [RequestStatus.is_finished(s) for s in order] == [False] * 3 + [True] * 5


def test_finished_reasons_follow_upstream():
    reasons = {s: RequestStatus.get_finished_reason(s) for s in RequestStatus}
    assert reasons == {
        RequestStatus.WAITING: None, RequestStatus.RUNNING: None, RequestStatus.PREEMPTED: None,
        RequestStatus.FINISHED_STOPPED: "stop", RequestStatus.FINISHED_LENGTH: "length",
        RequestStatus.FINISHED_ABORTED: "abort", RequestStatus.FINISHED_IGNORED: "length",
        RequestStatus.FINISHED_ERROR: "error",
    }


def test_counters_track_prompt_and_outputs():
    r = Request("r", [1, 2, 3], SamplingParams(max_tokens=4))
    assert (r.num_tokens, r.num_prompt_tokens, r.num_output_tokens, r.num_computed_tokens) == (3, 3, 0, 0)
    r.append_output_token_ids(7)
    r.append_output_token_ids([8, 9])
    assert r.all_token_ids == [1, 2, 3, 7, 8, 9] and r.output_token_ids == [7, 8, 9] and r.num_tokens == 6


def test_request_rejects_empty_or_negative_prompts():
    with pytest.raises(ValueError, match="empty"):
        Request("r", [], SamplingParams())
    with pytest.raises(ValueError, match=">= 0"):
        Request("r", [1, -2], SamplingParams())


def finish(tokens, eos=None, max_model_len=None, **params):
    r = Request("r", [1, 2], SamplingParams(**params), eos_token_id=eos)
    for t in tokens:
        r.append_output_token_ids(t)
        if check_stop(r, max_model_len):
            break
    return r


def test_check_stop_length_cap():
    r = finish([5, 6, 7, 8], max_tokens=3)
    assert r.output_token_ids == [5, 6, 7] and r.status == RequestStatus.FINISHED_LENGTH


def test_check_stop_eos_unless_ignored():
    assert finish([5, 256, 6], eos=256, max_tokens=9).status == RequestStatus.FINISHED_STOPPED
    assert finish([5, 256, 6], eos=256, max_tokens=3, ignore_eos=True).status == RequestStatus.FINISHED_LENGTH


def test_check_stop_stop_token_records_the_reason_and_beats_the_length_cap():
    r = finish([5, 9], max_tokens=2, stop_token_ids=[9])
    assert (r.status, r.stop_reason) == (RequestStatus.FINISHED_STOPPED, 9)


def test_check_stop_max_model_len():
    r = finish([5, 6, 7], max_model_len=4, max_tokens=10)
    assert r.output_token_ids == [5, 6] and r.status == RequestStatus.FINISHED_LENGTH


def test_tokenizer_round_trips_utf8_and_skips_eos():
    tok = ByteTokenizer()
    ids = tok.encode("héllo")
    assert ids == [104, 195, 169, 108, 108, 111]
    assert tok.decode(ids + [tok.eos_token_id]) == "héllo"
    assert tok.decode([195]) == "\ufffd", "half a character decodes to U+FFFD"
    assert (tok.eos_token_id, tok.vocab_size) == (256, 257)
