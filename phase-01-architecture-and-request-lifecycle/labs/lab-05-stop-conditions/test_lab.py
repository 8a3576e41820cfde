"""Lab 01-05 spec: EOS, stop tokens, max_tokens, ignore_eos, and the finish_reason a caller sees."""
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm import LLMEngine, Request, RequestStatus, SamplingParams, check_stop

EOS = 256


def params(**kw):
    return SamplingParams(temperature=0.0, **kw)


def test_eos_stops_generation(lab):
    r = lab.run_until_stop([10, 20, EOS, 30, 40], EOS, params(max_tokens=10))
    assert r.output_token_ids == [10, 20, EOS], "nothing after EOS; the EOS itself is an output token"
    assert r.status == RequestStatus.FINISHED_STOPPED and r.stop_reason is None


def test_ignore_eos_runs_to_length_cap(lab):
    r = lab.run_until_stop([10, 20, EOS, 30, 40], EOS, params(max_tokens=4, ignore_eos=True))
    assert r.output_token_ids == [10, 20, EOS, 30] and r.status == RequestStatus.FINISHED_LENGTH


def test_no_eos_hits_length_cap_exactly(lab):
    r = lab.run_until_stop(list(range(10)), EOS, params(max_tokens=3))
    assert r.output_token_ids == [0, 1, 2] and r.status == RequestStatus.FINISHED_LENGTH, "exactly max_tokens, not +-1"


def test_eos_on_the_boundary_reports_stop(lab):
    r = lab.run_until_stop([10, 20, EOS], EOS, params(max_tokens=3))
    assert r.status == RequestStatus.FINISHED_STOPPED, "EOS is checked before the length cap: the answer is complete"
    assert lab.finish_reason(r.status) == "stop"


def test_stop_token_ids_stop_and_record_the_token(lab):
    r = lab.run_until_stop([10, 99, 20], EOS, params(max_tokens=8, stop_token_ids=(99,)))
    assert r.output_token_ids == [10, 99] and r.status == RequestStatus.FINISHED_STOPPED
    assert r.stop_reason == 99, "stop_reason tells the caller which stop token fired"


def test_max_model_len_caps_prompt_plus_output(lab):
    r = lab.run_until_stop(list(range(10)), EOS, params(max_tokens=50), prompt=(1, 2, 3, 4), max_model_len=6)
    assert r.output_token_ids == [0, 1] and r.status == RequestStatus.FINISHED_LENGTH, "4 prompt + 2 output = 6"


def test_stream_that_runs_dry_leaves_request_running(lab):
    r = lab.run_until_stop([10, 20], EOS, params(max_tokens=8))
    assert r.status == RequestStatus.RUNNING and lab.finish_reason(r.status) is None


def test_check_stop_needs_an_output_token(lab):
    r = Request("x", [1, 2], params(max_tokens=1), eos_token_id=EOS)
    assert lab.check_stop(r) is False and r.status == RequestStatus.WAITING


def test_finish_reasons_match_upstream_map(lab):
    S = RequestStatus
    got = {s.name: lab.finish_reason(s) for s in S}
    assert got == {
        "WAITING": None, "RUNNING": None, "PREEMPTED": None,
        "FINISHED_STOPPED": "stop", "FINISHED_LENGTH": "length",
        "FINISHED_ABORTED": "abort", "FINISHED_IGNORED": "length", "FINISHED_ERROR": "error",
    }, "README task 3: an ignored (too long) prompt reports 'length' and an errored one 'error', as upstream's _FINISHED_REASON_MAP does"


def test_upstream_status_names(lab):
    got = {s.name: lab.upstream_status_name(s) for s in RequestStatus}
    assert got["FINISHED_LENGTH"] == "FINISHED_LENGTH_CAPPED"
    assert all(got[n] == n for n in got if n != "FINISHED_LENGTH"), "the other names are the same upstream"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    stream=st.lists(st.sampled_from([5, 7, 99, EOS]), min_size=0, max_size=12),
    max_tokens=st.integers(1, 8),
    ignore_eos=st.booleans(),
    stop=st.sampled_from([(), (99,), (7, 99), (EOS,), (5, EOS)]),
    max_model_len=st.sampled_from([None, 6, 9]),
)
def test_check_stop_agrees_with_mini_vllm(lab, stream, max_tokens, ignore_eos, stop, max_model_len):
    p = params(max_tokens=max_tokens, ignore_eos=ignore_eos, stop_token_ids=stop)
    mine = lab.run_until_stop(stream, EOS, p, prompt=(1, 2, 3), max_model_len=max_model_len)
    ref = Request("ref", [1, 2, 3], p, eos_token_id=EOS)
    ref.status = RequestStatus.RUNNING
    for t in stream:
        ref.append_output_token_ids(t)
        if check_stop(ref, max_model_len):
            break
    assert (mine.output_token_ids, mine.status, mine.stop_reason) == (ref.output_token_ids, ref.status, ref.stop_reason)


def test_engine_reports_length_with_ignore_eos(lab):
    (out,) = LLMEngine().generate(["hello"], params(max_tokens=5, ignore_eos=True))
    assert len(out.output_token_ids) == 5 and lab.finish_reason(out.status) == "length" == out.finish_reason


def test_engine_reports_stop_on_a_stop_token(lab):
    (first,) = LLMEngine().generate(["hello"], params(max_tokens=1))
    token = first.output_token_ids[0]
    (out,) = LLMEngine().generate(["hello"], params(max_tokens=5, stop_token_ids=(token,)))
    assert out.output_token_ids == [token] and out.stop_reason == token
    assert lab.finish_reason(out.status) == "stop" == out.finish_reason
    assert lab.upstream_status_name(out.status) == "FINISHED_STOPPED"


def test_eos_that_is_also_a_stop_token_is_reported_as_eos(lab):
    r = lab.run_until_stop([10, EOS], EOS, params(max_tokens=8, stop_token_ids=(EOS,)))
    assert r.status == RequestStatus.FINISHED_STOPPED and r.stop_reason is None, (
        "README task 1: EOS is checked before stop_token_ids, so an EOS that is also listed as a stop token "
        "finishes as EOS, with no stop_reason"
    )


def test_a_listed_eos_still_stops_when_eos_is_ignored(lab):
    r = lab.run_until_stop([10, EOS, 20], EOS, params(max_tokens=8, ignore_eos=True, stop_token_ids=(EOS,)))
    assert r.output_token_ids == [10, EOS] and r.stop_reason == EOS, (
        "README task 1: ignore_eos skips only the EOS check; stop_token_ids still apply, whatever the id"
    )


def test_stop_token_on_the_last_allowed_token_reports_stop(lab):
    r = lab.run_until_stop([10, 99], EOS, params(max_tokens=2, stop_token_ids=(99,)))
    assert (r.status, r.stop_reason) == (RequestStatus.FINISHED_STOPPED, 99), (
        "README task 1: stop tokens are checked before the length cap"
    )


def test_max_model_len_boundary(lab):
    r = lab.run_until_stop([10, 20, 30], EOS, params(max_tokens=50), prompt=(1, 2, 3, 4), max_model_len=5)
    assert r.output_token_ids == [10] and r.status == RequestStatus.FINISHED_LENGTH, (
        "README task 1: 4 prompt + 1 output = 5 = max_model_len: stop there, not one later"
    )
    r = lab.run_until_stop([10, 20, 30], EOS, params(max_tokens=50), prompt=(1, 2, 3, 4), max_model_len=None)
    assert r.status == RequestStatus.RUNNING, "no max_model_len, no model-length cap"


def test_no_eos_id_means_no_eos_check(lab):
    r = Request("x", [1], params(max_tokens=5), eos_token_id=None)
    r.status = RequestStatus.RUNNING
    r.append_output_token_ids(EOS)
    assert lab.check_stop(r) is False and r.status == RequestStatus.RUNNING, (
        "README task 1: a request without an EOS id is never stopped by EOS"
    )


def test_every_upstream_status_name(lab):
    assert {s.name: lab.upstream_status_name(s) for s in RequestStatus} == {
        "WAITING": "WAITING", "RUNNING": "RUNNING", "PREEMPTED": "PREEMPTED",
        "FINISHED_STOPPED": "FINISHED_STOPPED", "FINISHED_LENGTH": "FINISHED_LENGTH_CAPPED",
        "FINISHED_ABORTED": "FINISHED_ABORTED", "FINISHED_IGNORED": "FINISHED_IGNORED",
        "FINISHED_ERROR": "FINISHED_ERROR",
    }, "README task 4: read RequestStatus in upstream/vllm/v1/request.py"
