"""Lab 01-01 spec: one request's life, step by step: two counters racing."""
from mini_vllm import RequestStatus


def test_make_request_is_greedy_and_fixed_length(lab):
    r = lab.make_request("hello", 4)
    assert (r.request_id, r.prompt_token_ids, r.eos_token_id) == ("req-0", [104, 101, 108, 108, 111], 256)
    p = r.sampling_params
    assert (p.temperature, p.max_tokens, p.ignore_eos) == (0.0, 4, True), "greedy + ignore_eos: length known in advance"
    assert r.status == RequestStatus.WAITING and r.num_computed_tokens == 0


def test_snapshot_reads_status_name_and_both_counters(lab):
    r = lab.make_request("hi", 2)
    assert lab.snapshot(r) == lab.Event("req-0", "WAITING", 0, 2)


def test_first_event_is_running_after_prefill(lab):
    first = lab.trace_request("hello", max_tokens=4)[0]
    assert first == lab.Event("req-0", "RUNNING", 5, 6), (
        "step 1 computes all 5 prompt tokens AND samples the first output token (5 + 1 = 6)"
    )


def test_full_trace_of_hello(lab):
    Ev = lab.Event
    assert lab.trace_request("hello", max_tokens=4) == [
        Ev("req-0", "RUNNING", 5, 6),
        Ev("req-0", "RUNNING", 6, 7),
        Ev("req-0", "RUNNING", 7, 8),
        Ev("req-0", "FINISHED_LENGTH", 8, 9),
    ], "the last event comes from the step's finished list: the request has already left scheduler.running"


def test_counters_monotonic_and_decode_by_one(lab):
    events = lab.trace_request("the request lifecycle", max_tokens=8)
    computed = [e.num_computed_tokens for e in events]
    assert computed == sorted(computed), "num_computed_tokens never goes backwards without preemption"
    assert all(b - a == 1 for a, b in zip(computed, computed[1:])), "after prefill, each decode step computes one token"
    assert all(e.num_tokens == e.num_computed_tokens + 1 for e in events), "decode keeps the gap at exactly one"


def test_finishes_at_length_cap(lab):
    last = lab.trace_request("the request lifecycle", max_tokens=8)[-1]
    assert last.status == "FINISHED_LENGTH"
    assert last.num_tokens == 21 + 8, "max_tokens counts output tokens only"
    assert last.num_computed_tokens == last.num_tokens - 1, "the final token is sampled, never computed"


def test_total_steps_equals_max_tokens(lab):
    for n in (1, 3, 7):
        assert len(lab.trace_request("hello", max_tokens=n)) == n, "one prefill step (with token 1) + n-1 decode steps"


def test_chunked_prefill_shows_partial_counters(lab):
    events = lab.trace_request("abcdefghij", max_tokens=4, long_prefill_token_threshold=2)
    pairs = [(e.num_computed_tokens, e.num_tokens) for e in events]
    assert pairs == [(2, 10), (4, 10), (6, 10), (8, 10), (10, 11), (11, 12), (12, 13), (13, 14)], (
        "mid-prefill steps advance num_computed_tokens but sample nothing, so num_tokens stays 10"
    )


def test_token_budget_also_chunks(lab):
    events = lab.trace_request("hello world", max_tokens=3, max_num_batched_tokens=4)
    assert [(e.num_computed_tokens, e.num_tokens) for e in events] == [(4, 11), (8, 11), (11, 12), (12, 13), (13, 14)]


def test_one_token_request_finishes_in_its_prefill_step(lab):
    assert lab.trace_request("hello", max_tokens=1) == [lab.Event("req-0", "FINISHED_LENGTH", 5, 6)], (
        "README task 3: with max_tokens=1 the prefill step samples the only token and finishes; "
        "that event is only in the step's finished list"
    )


def test_snapshot_counts_output_tokens_in_num_tokens(lab):
    r = lab.make_request("hey", 5)
    r.append_output_token_ids(7)
    r.append_output_token_ids(8)
    assert lab.snapshot(r) == lab.Event("req-0", "WAITING", 0, 5), "README task 2: num_tokens is prompt (3) + output (2)"
