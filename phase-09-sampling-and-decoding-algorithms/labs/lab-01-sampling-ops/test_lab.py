"""Lab 09-01 spec: each op's exact semantics, the pipeline's order (the pin's, not the
folklore's), a statistical check of the draw with a fixed seed, and token-for-token
agreement with mini_vllm's sampler."""

import numpy as np
import pytest

from mini_vllm.logits_processor import apply_logits_processors
from mini_vllm.logits_processor import apply_penalties as engine_penalties
from mini_vllm.sampler import Sampler, SamplingParams, softmax

GREEDY = SamplingParams(temperature=0.0)


# ---- TODO 1: penalties


def test_penalties_match_the_worked_example(lab):
    out = lab.apply_penalties(np.array([0.0, 3.0, 1.0, 2.5]), [3], [1, 1], 0.5, 0.25, 2.0)
    assert out.tolist() == [0.0, 0.5, 1.0, 1.25], "token 1: 3/2 - 2*0.25 - 0.5; token 3 (prompt only): 2.5/2"


def test_repetition_penalty_pushes_both_signs_down(lab):
    out = lab.apply_penalties(np.array([2.0, -2.0, 0.0]), [0, 1, 2], [], repetition_penalty=4.0)
    assert out.tolist() == [0.5, -8.0, 0.0], "divide a positive logit, multiply a negative one: both fall"


def test_repetition_penalty_counts_a_token_once_however_often_it_repeats(lab):
    out = lab.apply_penalties(np.array([8.0, 1.0]), [0, 0], [0, 0, 0], repetition_penalty=2.0)
    assert out.tolist() == [4.0, 1.0], "repetition is a set test, not a count"


def test_repetition_reads_the_prompt_but_frequency_and_presence_do_not(lab):
    out = lab.apply_penalties(np.array([1.0, 1.0]), [0], [], presence_penalty=2.0, frequency_penalty=2.0,
                              repetition_penalty=2.0)
    assert out.tolist() == [0.5, 1.0]


def test_penalties_leave_the_callers_row_alone(lab):
    row = np.array([1.0, 2.0])
    lab.apply_penalties(row, [0], [1], 1.0, 1.0, 2.0)
    assert row.tolist() == [1.0, 2.0]


def test_penalties_match_mini_vllm_on_random_rows(lab):
    rng = np.random.default_rng(0)
    for _ in range(50):
        row = rng.normal(size=12)
        prompt, out = rng.integers(0, 12, 5).tolist(), rng.integers(0, 12, 7).tolist()
        knobs = rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(0.2, 3)
        np.testing.assert_allclose(lab.apply_penalties(row, prompt, out, *knobs),
                                   engine_penalties(row, prompt, out, *knobs), rtol=0, atol=1e-12)


# ---- TODO 2: bad words


def test_a_single_token_bad_word_is_always_banned(lab):
    assert np.isneginf(lab.apply_bad_words(np.zeros(4), [[2]], [])).tolist() == [False, False, True, False]


def test_a_longer_bad_word_bans_its_last_token_only_after_its_prefix(lab):
    assert np.isneginf(lab.apply_bad_words(np.zeros(4), [[1, 2, 3]], [0, 1, 2]))[3]
    assert not np.isneginf(lab.apply_bad_words(np.zeros(4), [[1, 2, 3]], [1, 2, 0])).any()


def test_a_bad_word_longer_than_the_output_bans_nothing(lab):
    assert not np.isneginf(lab.apply_bad_words(np.zeros(4), [[0, 1, 2]], [1])).any()


# ---- TODO 3: min-p


def test_min_p_cutoff_is_relative_to_the_top_probability(lab):
    confident = np.log([0.90, 0.06, 0.04])
    flat = np.log([0.40, 0.35, 0.25])
    assert np.isfinite(lab.apply_min_p(confident, 0.1)).tolist() == [True, False, False], "cutoff 0.09"
    assert np.isfinite(lab.apply_min_p(flat, 0.1)).tolist() == [True, True, True], "cutoff 0.04"


def test_min_p_keeps_a_token_exactly_at_the_cutoff(lab):
    assert np.isfinite(lab.apply_min_p(np.log([0.5, 0.25, 0.25]), 0.5)).all(), "0.25 is not below 0.5 * 0.5"


# ---- TODO 4: the argmax-changing half, in upstream's order


def test_allowed_ids_mask_before_the_bias(lab):
    out = lab.process_logits(np.zeros(3), SamplingParams(allowed_token_ids=[0, 1], logit_bias={2: 50.0}))
    assert out.tolist() == [0.0, 0.0, -np.inf], "a bias cannot bring back a token the allow-list removed"


def test_bias_runs_before_the_repetition_penalty(lab):
    out = lab.process_logits(np.array([1.0, 0.0]), SamplingParams(logit_bias={0: 3.0}, repetition_penalty=2.0), [0])
    assert out[0] == 2.0, "(1 + 3) / 2; penalising first would give 1/2 + 3 = 3.5"


def test_min_tokens_masks_eos_and_stop_ids_until_reached(lab):
    params = SamplingParams(min_tokens=2, stop_token_ids=[1])
    early = lab.process_logits(np.zeros(4), params, [0], [3], eos_token_id=2)
    assert np.isneginf(early).tolist() == [False, True, True, False]
    assert np.isfinite(lab.process_logits(np.zeros(4), params, [0], [3, 3], eos_token_id=2)).all()


def test_process_logits_matches_mini_vllm(lab):
    rng = np.random.default_rng(1)
    for i in range(60):
        params = SamplingParams(
            allowed_token_ids=None if i % 3 else sorted(set(rng.integers(0, 10, 6).tolist())),
            bad_words=[[int(rng.integers(10))], rng.integers(0, 10, 2).tolist()], min_tokens=int(rng.integers(0, 4)),
            stop_token_ids=[int(rng.integers(10))], logit_bias={int(rng.integers(10)): float(rng.normal())},
            presence_penalty=float(rng.uniform(-2, 2)), frequency_penalty=float(rng.uniform(-2, 2)),
            repetition_penalty=float(rng.uniform(0.5, 2)))
        row, prompt, out = rng.normal(size=10), rng.integers(0, 10, 4).tolist(), rng.integers(0, 10, 3).tolist()
        np.testing.assert_allclose(lab.process_logits(row, params, prompt, out, 9),
                                   apply_logits_processors(row, params, prompt, out, 9), rtol=0, atol=1e-12)


# ---- TODO 5: truncate


def test_min_p_runs_before_top_p_as_the_pin_does(lab):
    """Probabilities 0.45 / 0.40 / 0.10 / 0.05, min_p 0.2, top_p 0.89. Pinned order:
    min-p drops 0.05, the rest renormalise to 0.474 / 0.421 / 0.105, and the nucleus
    stops at 0.895: support {0, 1}. Top-p first would keep {0, 1, 2} (0.85 < 0.89)."""
    kept = np.isfinite(lab.truncate(np.log([0.45, 0.40, 0.10, 0.05]), SamplingParams(min_p=0.2, top_p=0.89)))
    assert kept.tolist() == [True, True, False, False]


def test_temperature_runs_before_min_p(lab):
    """At T = 4 the probabilities flatten and the 0.3 cutoff keeps all three tokens;
    min-p on the untempered row would keep only token 0."""
    out = lab.truncate(np.array([2.0, 0.0, -0.5]), SamplingParams(temperature=4.0, min_p=0.3))
    assert out.tolist() == [0.5, 0.0, -0.125], "divided by 4, nothing cut"


def test_top_k_runs_before_top_p(lab):
    """0.5 / 0.3 / 0.2 with top_k 2 then top_p 0.6: the kept pair renormalises to
    0.625 / 0.375 and the nucleus stops at 0.625, keeping token 0 only."""
    out = lab.truncate(np.log([0.5, 0.3, 0.2]), SamplingParams(top_k=2, top_p=0.6))
    assert np.isfinite(out).tolist() == [True, False, False]


# ---- TODO 6: sample


def test_penalties_change_greedy_too(lab):
    loop = np.array([0.0, 3.0, 1.0, 2.5])
    knobs = dict(presence_penalty=0.5, frequency_penalty=0.25, repetition_penalty=2.0)
    rng = np.random.default_rng(0)
    assert lab.sample(loop, GREEDY, rng, [3], [1, 1]) == 1
    assert lab.sample(loop, GREEDY.replace(**knobs), rng, [3], [1, 1]) == 3


def test_greedy_draws_no_random_number(lab):
    rng = np.random.default_rng(5)
    lab.sample(np.array([0.0, 1.0]), GREEDY, rng)
    assert rng.random() == np.random.default_rng(5).random()


class FixedU:
    """A generator stand-in whose random() returns preset numbers."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


def test_the_draw_is_the_first_token_whose_cumulative_sum_exceeds_u(lab):
    """Two equal tokens: cumulative sums 0.5, 1.0. u = 0.5 does not exceed 0.5, so the
    draw is token 1; u just below 0.5 is token 0."""
    params = SamplingParams()
    assert [lab.sample(np.zeros(2), params, FixedU(u)) for u in (0.0, 0.4999, 0.5, 0.9999)] == [0, 0, 1, 1]


def test_top_k_of_one_is_the_argmax(lab):
    rng = np.random.default_rng(0)
    assert {lab.sample(np.array([1.0, 3.0, 2.0]), SamplingParams(top_k=1), rng) for _ in range(50)} == {1}


def test_draws_follow_the_processed_distribution(lab):
    """20,000 draws with seed 0: every frequency within 4 standard errors of
    0.45 / 0.85 and 0.40 / 0.85, and the truncated tokens never drawn."""
    rng = np.random.default_rng(0)
    n = 20000
    freq = np.bincount([lab.sample(np.log([0.45, 0.40, 0.10, 0.05]), SamplingParams(min_p=0.2, top_p=0.89), rng)
                        for _ in range(n)], minlength=4) / n
    expected = np.array([0.45, 0.40, 0.0, 0.0]) / 0.85
    assert (np.abs(freq - expected) <= 4 * np.sqrt(expected * (1 - expected) / n)).all(), freq


def test_an_allowed_token_distribution_is_sampled_in_proportion(lab):
    """Temperature 2, allow-list {1, 3, 4}: the draw must follow softmax(row / 2) on
    those three ids."""
    row = np.array([5.0, 1.0, 0.0, 2.0, -1.0])
    params = SamplingParams(temperature=2.0, allowed_token_ids=[1, 3, 4])
    rng = np.random.default_rng(0)
    n = 20000
    freq = np.bincount([lab.sample(row, params, rng) for _ in range(n)], minlength=5) / n
    expected = np.zeros(5)
    expected[[1, 3, 4]] = softmax(row[[1, 3, 4]] / 2.0)
    assert (np.abs(freq - expected) <= 4 * np.sqrt(expected * (1 - expected) / n) + 1e-12).all(), freq


def test_sample_matches_mini_vllm_token_for_token(lab):
    rng = np.random.default_rng(2)
    engine = Sampler()
    for i in range(200):
        params = SamplingParams(temperature=float(rng.choice([0.0, 0.7, 1.3])), top_k=int(rng.integers(0, 6)),
                                top_p=float(rng.uniform(0.5, 1.0)), min_p=float(rng.uniform(0, 0.3)),
                                repetition_penalty=float(rng.uniform(0.8, 1.5)), min_tokens=int(rng.integers(0, 3)))
        row, prompt, out = rng.normal(size=8), rng.integers(0, 8, 3).tolist(), rng.integers(0, 8, 2).tolist()
        mine = lab.sample(row, params, np.random.default_rng(i), prompt, out, 7)
        ref = engine.sample(row, params, np.random.default_rng(i), prompt, out, 7)
        assert mine == ref, f"case {i}: {params}"
