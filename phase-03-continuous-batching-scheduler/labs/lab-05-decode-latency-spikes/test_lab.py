"""Lab 03-05 spec: the decode stream's gaps with and without a prefill threshold, and the
two schedules against the traces recorded from vLLM 0.22.1."""

import json
from pathlib import Path

import mini_vllm
import pytest

GOLDEN = {
    t["name"]: t
    for t in map(json.loads, (Path(mini_vllm.__file__).parent / "testdata" / "upstream_scheduler_traces.jsonl").open())
}


@pytest.fixture(scope="module")
def runs(lab):
    return {t: lab.run_collision(threshold=t) for t in (0, 32)}


def gaps(lab, run):
    return lab.victim_gaps(run.schedule, "A", 8)


def test_unchunked_prefill_puts_257_tokens_in_one_of_A_s_steps(lab, runs):
    assert gaps(lab, runs[0]) == [257] + [2] * 14, (
        "B's 256 prompt tokens share a step with A's 1-token decode; then A and B decode together")


def test_threshold_32_caps_every_gap_at_33(lab, runs):
    assert gaps(lab, runs[32]) == [33] * 8 + [2] * 7, "8 chunks of 32 ride with A's decodes, then 2-token steps"


@pytest.mark.parametrize("threshold", [0, 32])
def test_schedule_matches_vllm_0_22_1_step_by_step(lab, runs, threshold):
    theirs = [s["sched"] for s in GOLDEN[f"spike_th{threshold}"]["steps"]]
    assert runs[threshold].schedule == theirs


def test_chunking_moves_work_but_does_not_remove_it(lab, runs):
    totals = {t: lab.step_totals(r.schedule) for t, r in runs.items()}
    assert sum(totals[0]) == sum(totals[32]) == 294, "(8 + 16 - 1) + (256 + 16 - 1) tokens either way"
    assert (len(totals[0]), len(totals[32])) == (17, 24), "B's prefill stretches from 1 step to 8"


def test_the_mean_gap_hides_the_spike(lab, runs):
    g0, g32 = gaps(lab, runs[0]), gaps(lab, runs[32])
    assert (sum(g0) / 15, round(sum(g32) / 15, 2)) == (19.0, 18.53), "means barely differ..."
    assert (max(g0), max(g32)) == (257, 33), "...the worst gap differs 7.8x"


def test_chunking_changes_no_output_token(lab, runs):
    assert runs[0].outputs == runs[32].outputs


def test_the_victim_is_scheduled_in_every_step_until_it_finishes(lab, runs):
    for run in runs.values():
        assert all("A" in s for s in run.schedule[:16]), "running requests come first: A is never skipped"
        assert all("A" not in s for s in run.schedule[16:]), "A has 16 steps: 1 prefill + 15 decodes"


def test_the_long_prompt_pays_with_its_time_to_first_token(lab, runs):
    assert runs[0].ttft_steps == {"A": 1, "B": 1}, "unchunked, B samples in the step it arrives"
    assert runs[32].ttft_steps == {"A": 1, "B": 8}, "chunked, B's first token waits for the 8th chunk"


@pytest.mark.parametrize("threshold,worst", [(8, 9), (64, 65), (128, 129), (256, 257)])
def test_worst_gap_is_threshold_plus_one(lab, threshold, worst):
    run = lab.run_collision(threshold=threshold)
    assert max(gaps(lab, run)) == worst, "one chunk of B plus A's own token (threshold 256 is no cap for 256)"


def test_the_step_budget_chunks_too(lab):
    run = lab.run_collision(threshold=0, max_num_batched_tokens=64)
    assert run.schedule[1] == {"A": 1, "B": 63}, "task 1: pass the budget on: A's decode and 63 of B's tokens"
    assert gaps(lab, run)[:5] == [64, 64, 64, 64, 5] and run.ttft_steps["B"] == 5


def test_victim_gaps_skip_the_victim_s_own_prefill_chunks(lab):
    schedule = [{"A": 5}, {"A": 3, "B": 10}, {"A": 1, "B": 1}, {"B": 1}, {"A": 1, "B": 7}]
    assert lab.victim_gaps(schedule, "A", 8) == [2, 8], (
        "A's prompt ends in step 2 (first token); its later tokens come from steps of 2 and 8 tokens")


def test_plot_of_both_profiles_is_a_png(lab, runs, tmp_path):
    pytest.importorskip("matplotlib")
    path = lab.plot_gaps({f"threshold={t}": gaps(lab, r) for t, r in runs.items()}, tmp_path / "gaps.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
