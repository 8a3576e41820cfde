"""Lab 03-06 spec: the scheduled-token odometer with prefix caching off and on, the
savings identity, the partial-block and last-token rules, and the recorded vLLM trace."""

import json
from pathlib import Path

import mini_vllm
import pytest

GOLDEN = {
    t["name"]: t
    for t in map(json.loads, (Path(mini_vllm.__file__).parent / "testdata" / "upstream_scheduler_traces.jsonl").open())
}


@pytest.fixture(scope="module")
def arms(lab):
    prompts = lab.shared_prefix_prompts()
    return lab.run_and_count(prompts, False), lab.run_and_count(prompts, True)


def test_caching_off_pays_full_price_for_everyone(lab, arms):
    off, _ = arms
    assert lab.shared_prefix_prompts() == [r["prompt"] for r in GOLDEN["prefix_pc0_stagger0"]["requests"]]
    assert off.total == 544, "8 x (65 prompt + 3 decode) tokens"
    assert off.per_step == [sum(s["sched"].values()) for s in GOLDEN["prefix_pc0_stagger0"]["steps"]] == [520, 8, 8, 8]


def test_caching_on_computes_the_shared_prefix_once(lab, arms):
    _, on = arms
    assert on.total == 96, "68 for the first request + 7 x 4 for the followers"
    assert on.per_step == [sum(s["sched"].values()) for s in GOLDEN["prefix_pc1_stagger0"]["steps"]] == [72, 8, 8, 8]
    assert on.num_cached_tokens == [0] + [64] * 7, "followers adopt 16 blocks of 4 in the step the leader fills them"


def test_savings_equal_followers_times_shared_full_blocks(lab, arms):
    off, on = arms
    assert off.total - on.total == 448 == 7 * 16 * 4
    assert lab.predicted_savings(8, 64, 65, 4) == 448


def test_the_closed_form_predicts_both_arms(lab, arms):
    off, on = arms
    assert lab.predicted_total(8, 64, 65, 4, 4, False) == off.total
    assert lab.predicted_total(8, 64, 65, 4, 4, True) == on.total


def test_outputs_are_identical_with_and_without_caching(lab, arms):
    off, on = arms
    assert off.outputs == on.outputs, "a cached block holds exactly the K/V the follower would have computed"


def test_a_partial_shared_block_saves_nothing(lab):
    prompts = lab.shared_prefix_prompts(shared_len=66)
    off, on = lab.run_and_count(prompts, False), lab.run_and_count(prompts, True)
    assert on.num_cached_tokens[1:] == [64] * 7, "66 shared tokens = 16 full blocks + 2 tokens in a block that differs"
    assert (off.total, on.total) == (560, 112)
    assert off.total - on.total == 448 == lab.predicted_savings(8, 66, 67, 4), "the 2 extra shared tokens save 0"


def test_identical_prompts_still_recompute_the_last_block(lab):
    prompts = [lab.shared_prefix_prompts(1, 64, 0)[0]] * 8
    off, on = lab.run_and_count(prompts, False), lab.run_and_count(prompts, True)
    assert on.num_cached_tokens[1:] == [60] * 7, "at most (64 - 1) // 4 = 15 blocks: the last token needs logits"
    assert off.total - on.total == 420 == lab.predicted_savings(8, 64, 64, 4)


def test_full_hit_recomputes_a_whole_block_like_vllm(lab):
    prompts = [r["prompt"] for r in GOLDEN["full_hit_block_multiple"]["requests"]]
    on = lab.run_and_count(prompts, True, block_size=16, max_tokens=3)
    vllm_hit = GOLDEN["full_hit_block_multiple"]["steps"][3]["new"]["b"]["cached"]
    assert on.num_cached_tokens == [0, 48] and vllm_hit == 48, "64 identical tokens: 16 are recomputed, not 1"
    assert lab.predicted_savings(2, 64, 64, 16) == 48


def test_prompts_that_differ_from_the_first_token_share_nothing(lab):
    prompts = [[100 + r] + p[1:] for r, p in enumerate(lab.shared_prefix_prompts())]
    off, on = lab.run_and_count(prompts, False), lab.run_and_count(prompts, True)
    assert on.num_cached_tokens == [0] * 8 and on.total == off.total == 544, (
        "block hashes are chained: a different first block changes every hash after it")


def test_twenty_chats_with_a_100_token_system_prompt(lab):
    assert lab.predicted_savings(20, 100, 120, 16) == 1824, "19 followers x 6 blocks x 16 (EXERCISES.md)"
    assert lab.predicted_total(20, 100, 120, 16, 8, True) == 20 * 127 - 1824 == 716
