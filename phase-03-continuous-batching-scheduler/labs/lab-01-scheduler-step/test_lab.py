"""Lab 03-01 spec: the clamp, the two phases, and step-by-step agreement with traces
recorded from vLLM 0.22.1's own Scheduler (mini_vllm/testdata/upstream_scheduler_traces.jsonl)."""

import json
from collections import deque
from pathlib import Path

import mini_vllm
from hypothesis import given, settings
from hypothesis import strategies as st
from mini_vllm import KVCacheManager, Request, RequestStatus, SamplingParams, SchedulerConfig

GOLDEN = {
    t["name"]: t
    for t in map(json.loads, (Path(mini_vllm.__file__).parent / "testdata" / "upstream_scheduler_traces.jsonl").open())
}


def replay(lab, name):
    """Run a recorded workload through your schedule_step; return (your trace, upstream's)."""
    g = GOLDEN[name]
    c = g["config"]
    config = SchedulerConfig(c["max_num_seqs"], c["max_num_batched_tokens"], c["max_model_len"],
                             c["long_prefill_token_threshold"])
    (max_tokens,) = {r["max_tokens"] for r in g["requests"]}
    trace = lab.run_trace({r["id"]: r["prompt"] for r in g["requests"]}, max_tokens, config,
                          block_size=c["block_size"], num_blocks=c["num_blocks"],
                          enable_prefix_caching=c["enable_prefix_caching"],
                          arrivals={r["id"]: r.get("arrival", 0) for r in g["requests"]})
    return trace, g


def assert_same_schedule(trace, g):
    mine = [s["sched"] for s in trace.steps]
    theirs = [s["sched"] for s in g["steps"]]
    for i, (a, b) in enumerate(zip(mine, theirs), 1):
        assert a == b, f"{g['name']} step {i}: you scheduled {a}, vLLM 0.22.1 scheduled {b}"
    assert len(mine) == len(theirs), f"{g['name']}: {len(mine)} steps, vLLM took {len(theirs)}"


def req(rid, n, max_tokens=4):
    return Request(rid, list(range(1, n + 1)), SamplingParams(max_tokens=max_tokens, ignore_eos=True))


# ---- TODO 1: the clamp


def test_clamp_is_budget_bound_when_the_budget_is_smaller(lab):
    assert lab.clamp_new_tokens(11, 8) == 8, "an 11-token gap under an 8-token budget gets 8"


def test_clamp_is_threshold_bound_for_a_long_prefill(lab):
    assert lab.clamp_new_tokens(256, 8192, 32) == 32, "threshold 32 caps a 256-token prefill chunk at 32"


def test_clamp_lets_a_decode_through(lab):
    assert lab.clamp_new_tokens(1, 5, 32) == 1, "a 1-token gap is below both caps"


def test_clamp_threshold_zero_means_off(lab):
    assert lab.clamp_new_tokens(256, 8192, 0) == 256, "threshold 0 disables chunking by threshold"


def test_clamp_of_a_spent_budget_is_zero(lab):
    assert lab.clamp_new_tokens(5, 0, 0) == 0, "no budget left means no tokens, never a negative count"


# ---- TODO 2 + 3: one schedule_step call


def test_budget8_first_step_chunks_A_and_leaves_B_waiting(lab):
    kv = KVCacheManager(64, 16, enable_caching=False)
    a, b = req("A", 11), req("B", 7)
    running, waiting = [], deque([a, b])
    out = lab.schedule_step(running, waiting, kv, SchedulerConfig(max_num_seqs=2, max_num_batched_tokens=8))
    assert out == {"A": 8}, "the budget (8) is spent on A's first chunk; B needs budget > 0 to be admitted"
    assert running == [a] and list(waiting) == [b]
    assert a.status == RequestStatus.RUNNING and b.status == RequestStatus.WAITING
    assert a.num_computed_tokens == 0, "schedule_step must not advance counters: the model has not run yet"
    assert kv.get_block_ids("A") == [1], "A's 8 tokens need one 16-token block (block 0 is the null block)"


def test_running_decode_is_served_before_a_waiting_prompt(lab):
    kv = KVCacheManager(64, 16, enable_caching=False)
    a, b = req("A", 4), req("B", 20)
    a.status, a.num_computed_tokens = RequestStatus.RUNNING, 4
    kv.allocate_slots(a, 4)
    a.append_output_token_ids(7)
    out = lab.schedule_step([a], deque([b]), kv, SchedulerConfig(max_num_batched_tokens=6))
    assert list(out.items()) == [("A", 1), ("B", 5)], "running first (its 1-token decode), then B gets the 5 left"


def test_admission_stops_at_the_first_request_that_does_not_fit(lab):
    kv = KVCacheManager(5, 4, enable_caching=False)  # 4 usable blocks = 16 slots
    a, b, c = req("A", 12), req("B", 8), req("C", 2)
    running, waiting = [], deque([a, b, c])
    out = lab.schedule_step(running, waiting, kv, SchedulerConfig())
    assert out == {"A": 12}, "A takes 3 blocks; B needs 2 of the 1 left, so admission stops"
    assert [r.request_id for r in waiting] == ["B", "C"], "C would fit, but FCFS never lets it pass B"


def test_max_num_seqs_is_checked_only_at_admission(lab):
    kv = KVCacheManager(64, 16, enable_caching=False)
    reqs = [req(f"r{i}", 3) for i in range(5)]
    running, waiting = [], deque(reqs)
    out = lab.schedule_step(running, waiting, kv, SchedulerConfig(max_num_seqs=2))
    assert out == {"r0": 3, "r1": 3} and len(waiting) == 3, "2 slots: r0 and r1 run, r2..r4 wait"


# ---- whole traces against vLLM 0.22.1


def test_budget8_trace_matches_vllm_step_by_step(lab):
    trace, g = replay(lab, "budget8")
    assert [s["sched"] for s in trace.steps] == [
        {"A": 8}, {"A": 3, "B": 5}, {"A": 1, "B": 2}, {"A": 1, "B": 1}, {"A": 1, "B": 1}, {"B": 1}]
    assert_same_schedule(trace, g)
    assert [s["finished"] for s in trace.steps] == [s["finished"] for s in g["steps"]]
    assert trace.outputs == g["outputs"]


def test_budget6_variant_from_the_exercises(lab):
    config = SchedulerConfig(max_num_seqs=2, max_num_batched_tokens=6, max_model_len=1024)
    trace = lab.run_trace({"A": list(range(10, 21)), "B": list(range(30, 37))}, 4, config)
    assert [s["sched"] for s in trace.steps] == [
        {"A": 6}, {"A": 5, "B": 1}, {"A": 1, "B": 5}, {"A": 1, "B": 1}, {"A": 1, "B": 1}, {"B": 1}, {"B": 1}]
    assert [s["finished"] for s in trace.steps][4:] == [["A"], [], ["B"]]


def test_max_num_seqs_2_admits_in_pairs_like_vllm(lab):
    trace, g = replay(lab, "max_num_seqs_2")
    assert_same_schedule(trace, g)
    assert max(s["num_running"] for s in trace.steps) == 2


def test_threshold_32_chunks_a_256_token_prompt_like_vllm(lab):
    trace, g = replay(lab, "spike_th32")
    assert_same_schedule(trace, g)
    assert [s["sched"].get("B") for s in trace.steps[1:9]] == [32] * 8


def test_prefix_cache_hit_admits_followers_with_one_token_like_vllm(lab):
    trace, g = replay(lab, "prefix_pc1_stagger0")
    assert trace.steps[0]["sched"] == {"r0": 65, **{f"r{i}": 1 for i in range(1, 8)}}, (
        "followers hit r0's 16 full blocks (64 tokens) in the same step: look at get_computed_blocks")
    assert_same_schedule(trace, g)


def test_prefix_hit_on_a_request_that_waited_behind_a_chunked_prefill(lab):
    trace, g = replay(lab, "hit_during_chunked_prefill")
    assert_same_schedule(trace, g)
    assert [s["free_blocks"] for s in trace.steps] == [s["free_blocks"] for s in g["steps"]]


@settings(max_examples=30, deadline=None)
@given(
    prompt_lens=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    max_tokens=st.integers(1, 4),
    budget=st.integers(1, 48),
    max_num_seqs=st.integers(1, 4),
    threshold=st.integers(0, 16),
)
def test_every_step_respects_budget_and_slots_and_every_token_is_computed_once(
        prompt_lens, max_tokens, budget, max_num_seqs, threshold):
    from course.labkit import load_lab

    lab = load_lab(__file__)
    config = SchedulerConfig(max_num_seqs=max_num_seqs, max_num_batched_tokens=budget,
                             long_prefill_token_threshold=threshold)
    prompts = {f"r{i}": list(range(1, n + 1)) for i, n in enumerate(prompt_lens)}
    trace = lab.run_trace(prompts, max_tokens, config, block_size=4, num_blocks=256)
    for s in trace.steps:
        assert sum(s["sched"].values()) <= budget, f"budget {budget} exceeded: {s['sched']}"
        assert s["num_running"] <= max_num_seqs
        if threshold:
            assert all(n <= threshold for n in s["sched"].values()), f"a chunk above threshold {threshold}"
    for rid, n in zip(prompts, prompt_lens):
        total = sum(s["sched"].get(rid, 0) for s in trace.steps)
        assert total == n + max_tokens - 1, f"{rid}: the last sampled token never needs KV, so {n}+{max_tokens}-1"
    assert trace.steps[-1]["free_blocks"] == 255, "every block back in the pool at the end"
