"""Lab 03-04 spec: your preempt() inside mini_vllm's allocate-or-preempt loop. Victims in
vLLM 0.22.1's order (trace ``preempt_cramped``), outputs unchanged, no block leaked."""

import json
from pathlib import Path

import mini_vllm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mini_vllm import KVCacheManager, Request, RequestStatus, SamplingParams, Scheduler, SchedulerConfig

GOLDEN = {
    t["name"]: t
    for t in map(json.loads, (Path(mini_vllm.__file__).parent / "testdata" / "upstream_scheduler_traces.jsonl").open())
}
PROMPTS = {f"p{i}": [20 + i] * 10 for i in range(4)}  # the recorded workload: 4 x 10 tokens, 20 out each


@pytest.fixture(scope="module")
def cramped(lab):
    return lab.run(PROMPTS, max_tokens=20, num_blocks=13)


@pytest.fixture(scope="module")
def roomy(lab):
    return lab.run(PROMPTS, max_tokens=20, num_blocks=256)


def running_scheduler(n_requests=2):
    """A scheduler whose requests were admitted and ran one prefill step."""
    sched = Scheduler(SchedulerConfig(), KVCacheManager(13, 4, enable_caching=False))
    reqs = [Request(f"r{i}", [5 + i] * 10, SamplingParams(max_tokens=8, ignore_eos=True)) for i in range(n_requests)]
    for r in reqs:
        sched.add_request(r)
    out = sched.schedule()
    sched.update_from_output(out, {r.request_id: 7 for r in reqs})
    return sched, reqs


# ---- TODO 1: preempt


def test_preempt_frees_every_block_and_forgets_progress(lab):
    sched, (a, b) = running_scheduler()
    free_before = sched.kv_cache_manager.num_free_blocks
    victim = sched.running.pop()
    lab.preempt(sched, victim)
    assert sched.kv_cache_manager.num_free_blocks == free_before + 3, "b held 3 blocks (11 tokens of 4 per block)"
    assert sched.kv_cache_manager.get_block_ids("r1") == []
    assert (b.status, b.num_computed_tokens, b.num_preemptions) == (RequestStatus.PREEMPTED, 0, 1)
    assert b.output_token_ids == [7], "recompute preemption keeps the sampled tokens; they are prefilled again"


def test_preempted_request_goes_to_the_front_of_waiting(lab):
    sched, (a, b) = running_scheduler()
    late = Request("late", [9] * 4, SamplingParams(max_tokens=2))
    sched.add_request(late)
    lab.preempt(sched, sched.running.pop())
    assert [r.request_id for r in sched.waiting] == ["r1", "late"], "the victim is the next one re-admitted"


def test_only_a_running_request_can_be_preempted(lab):
    sched, _ = running_scheduler()
    waiting = Request("w", [1, 2], SamplingParams(max_tokens=2))
    with pytest.raises(ValueError):
        lab.preempt(sched, waiting)


# ---- TODO 2: the cramped run, against vLLM 0.22.1


def test_cramped_cache_preempts_in_vllm_order(lab, cramped):
    assert cramped.preemptions == [(4, "p3"), (8, "p2"), (16, "p1"), (25, "p2"), (34, "p3")], (
        "FCFS: the most recently admitted running request is the victim")
    theirs = [(i, rid) for i, s in enumerate(GOLDEN["preempt_cramped"]["steps"], 1) for rid in s["preempted"]]
    assert cramped.preemptions == theirs


def test_cramped_schedule_matches_vllm_step_by_step(lab, cramped):
    assert cramped.schedule == [s["sched"] for s in GOLDEN["preempt_cramped"]["steps"]]


def test_preemption_changes_no_output_token(lab, cramped, roomy):
    assert roomy.preemptions == [], "256 blocks: nobody is preempted"
    assert cramped.outputs == roomy.outputs
    assert all(len(o) == 20 for o in cramped.outputs.values()), "every request reaches max_tokens"


def test_preemption_changes_no_output_token_when_sampling(lab):
    hot = lab.run(PROMPTS, max_tokens=20, num_blocks=13, temperature=0.9)
    cool = lab.run(PROMPTS, max_tokens=20, num_blocks=256, temperature=0.9)
    assert len(hot.preemptions) == 5 and hot.outputs == cool.outputs


def test_preemption_costs_time_not_tokens_out(lab, cramped, roomy):
    assert (len(roomy.schedule), roomy.total_scheduled_tokens) == (20, 116), "4 x (10 + 20 - 1) tokens in 20 steps"
    assert (len(cramped.schedule), cramped.total_scheduled_tokens) == (43, 208), "92 tokens recomputed, 23 extra steps"


def test_prefix_caching_makes_recompute_cheaper(lab):
    cached = lab.run(PROMPTS, max_tokens=20, num_blocks=13, enable_prefix_caching=True)
    assert cached.total_scheduled_tokens == 160, "re-admitted requests hit their own freed, still-cached blocks"
    assert cached.schedule[20] == {"p1": 9, "p2": 17}, "p1 recomputes 9 of its 25 tokens instead of all 25"


def test_no_block_leaks_after_a_preemption_storm(lab, cramped):
    kv = cramped.engine.engine_core.kv_cache_manager
    assert kv.num_free_blocks == 12, "all 12 usable blocks back in the pool (block 0 is the null block)"
    kv.block_pool.check_invariants()
    assert [o.metrics["num_preemptions"] for o in map(cramped.engine.finished_outputs.get, PROMPTS)] == [0, 1, 2, 2]


# ---- TODO 3: where the cliff is


def test_min_blocks_without_preemption(lab):
    assert lab.min_blocks_without_preemption([10] * 4, 20, 4) == 33, "4 x ceil(29 / 4) + the null block"
    assert lab.min_blocks_without_preemption([3], 1, 4) == 2


def test_the_cliff_is_exactly_there(lab):
    n = lab.min_blocks_without_preemption([10] * 4, 20, 4)
    assert lab.run(PROMPTS, max_tokens=20, num_blocks=n).preemptions == []
    assert len(lab.run(PROMPTS, max_tokens=20, num_blocks=n - 1).preemptions) == 1


@settings(max_examples=12, deadline=None)
@given(lens=st.lists(st.integers(1, 12), min_size=2, max_size=4), max_tokens=st.integers(2, 12),
       spare=st.integers(0, 6))
def test_any_cramped_pool_gives_roomy_outputs_and_leaks_nothing(lens, max_tokens, spare):
    from course.labkit import load_lab

    lab = load_lab(__file__)
    prompts = {f"q{i}": [(5 * i + j) % 200 + 1 for j in range(n)] for i, n in enumerate(lens)}
    num_blocks = 1 + 12 + spare  # room for one 48-token request (max_model_len) and a little more
    small = lab.run(prompts, max_tokens, num_blocks)
    big = lab.run(prompts, max_tokens, 256)
    assert small.outputs == big.outputs
    assert small.engine.engine_core.kv_cache_manager.num_free_blocks == num_blocks - 1
