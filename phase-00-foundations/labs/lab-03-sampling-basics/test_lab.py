"""Lab 00-03 spec: softmax, top-k, top-p and one draw, in agreement with mini_vllm's Sampler."""
import numpy as np
import pytest

from mini_vllm import Sampler, SamplingParams


def finite(x):
    return np.isfinite(x)


def test_softmax_is_a_distribution_and_is_stable(lab):
    p = lab.softmax(np.array([1000.0, 1001.0, 1002.0]))
    assert not np.isnan(p).any(), "exp(1000) overflows: subtract the max first"
    np.testing.assert_allclose(p, lab.softmax(np.array([0.0, 1.0, 2.0])), rtol=0, atol=1e-15)
    assert p.dtype == np.float64 and abs(p.sum() - 1.0) < 1e-12
    assert list(np.argsort(p)) == [0, 1, 2], "softmax preserves the order of the logits"


def test_softmax_gives_minus_inf_zero_probability(lab):
    p = lab.softmax(np.array([0.0, -np.inf, 0.0]))
    assert p.tolist() == [0.5, 0.0, 0.5]


def test_guide_attention_worked_example(lab):
    q = np.array([1.0, 2.0])
    keys = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    values = np.array([[6.0, 0.0], [0.0, 6.0], [3.0, 3.0]])
    assert np.dot([2, 0, 1], [3, 4, 5]) == 11, "the primer's dot product"
    assert (keys @ q).tolist() == [1.0, 2.0, 3.0], "one dot product per key"
    weights = lab.softmax(keys @ q / np.sqrt(2))
    assert np.round(weights, 2).tolist() == [0.14, 0.28, 0.58], "guide section 4, attention by hand"
    assert np.round(weights @ values, 2).tolist() == [2.57, 3.43]


def test_guide_temperature_example(lab):
    logits = np.array([2.0, 1.0, 0.1])
    assert np.round(lab.softmax(logits), 3).tolist() == [0.659, 0.242, 0.099]
    assert np.round(lab.softmax(logits / 0.5), 3).tolist() == [0.864, 0.117, 0.019]
    assert np.round(lab.softmax(logits / 2.0), 3).tolist() == [0.502, 0.304, 0.194]


def test_temperature_sharpens_or_flattens(lab):
    logits = np.array([2.0, 1.0, 0.1, -1.0])
    tops = [lab.softmax(logits / t).max() for t in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert tops == sorted(tops, reverse=True), "higher temperature must lower the top probability"


def test_greedy_is_argmax_and_ignores_every_other_knob(lab):
    logits = np.array([0.5, 3.0, 2.9, -1.0])
    hostile = SamplingParams(temperature=0.0, top_k=1, top_p=0.01, seed=123)
    assert lab.sample(logits, hostile) == 1
    assert lab.sample(logits, SamplingParams(temperature=0.0), np.random.default_rng(7)) == 1


def test_greedy_breaks_ties_by_lowest_id(lab):
    assert lab.sample(np.array([1.0, 4.0, 4.0, 2.0]), SamplingParams(temperature=0.0)) == 1


def test_top_k_keeps_exactly_k(lab):
    logits = np.array([0.1, 2.0, -1.0, 1.5, 0.3])
    out = lab.apply_top_k(logits, 2)
    assert finite(out).tolist() == [False, True, False, True, False]
    assert out[1] == 2.0 and out[3] == 1.5, "survivors keep their logits unchanged"


@pytest.mark.parametrize("k", [0, -1, 5, 9])
def test_top_k_disabled_values_pass_through(lab, k):
    logits = np.array([0.1, 2.0, -1.0, 1.5, 0.3])
    assert lab.apply_top_k(logits, k).tolist() == logits.tolist(), "k<=0 or k>=vocab disables top-k"


def test_top_k_keeps_every_tie_at_the_boundary(lab):
    out = lab.apply_top_k(np.array([1.0, 2.0, 2.0, 0.0]), 1)
    assert finite(out).tolist() == [False, True, True, False], "values equal to the k-th largest survive"


def test_top_p_keeps_the_smallest_sufficient_nucleus(lab):
    # Probabilities 0.4, 0.4, 0.2. Thresholds sit well away from the cumulative sums
    # 0.4 / 0.8 / 1.0: exactly on a sum, float rounding could tip the decision.
    logits = np.log(np.array([0.4, 0.2, 0.4]))
    assert finite(lab.apply_top_p(logits, 0.5)).tolist() == [True, False, True], "0.4 < 0.5: the crossing token joins"
    assert finite(lab.apply_top_p(logits, 0.85)).tolist() == [True, True, True]
    assert finite(lab.apply_top_p(logits, 0.3)).tolist() == [True, False, False], "equal probabilities: lower id first"
    assert lab.apply_top_p(logits, 1.0).tolist() == logits.tolist(), "p=1 disables top-p"


def test_guide_top_p_example(lab):
    assert finite(lab.apply_top_p(np.array([2.0, 1.0, 0.1]), 0.9)).tolist() == [True, True, False]


def test_draw_is_one_uniform_through_the_cdf(lab):
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    # default_rng(0).random() is 0.63696...; the cumulative sums are 0.5, 0.8, 1.0.
    assert lab.sample(logits, SamplingParams(temperature=1.0), np.random.default_rng(0)) == 1


def test_seeded_sampling_is_reproducible(lab):
    logits = np.random.default_rng(3).standard_normal(257)
    params = SamplingParams(temperature=0.9, seed=42)
    assert len({lab.sample(logits, params) for _ in range(5)}) == 1, "same seed, same token"


CONFIGS = [
    SamplingParams(temperature=0.0),
    SamplingParams(temperature=0.0, top_k=5, top_p=0.3),
    SamplingParams(temperature=1.0),
    SamplingParams(temperature=0.3),
    SamplingParams(temperature=2.5),
    SamplingParams(temperature=1.0, top_k=1),
    SamplingParams(temperature=1.0, top_k=10),
    SamplingParams(temperature=0.7, top_k=50),
    SamplingParams(temperature=1.0, top_p=0.5),
    SamplingParams(temperature=0.8, top_p=0.9),
    SamplingParams(temperature=1.3, top_p=0.95),
    SamplingParams(temperature=0.7, top_k=40, top_p=0.9),
    SamplingParams(temperature=1.0, top_k=3, top_p=0.6),
    SamplingParams(temperature=1.0, min_p=0.1),
    SamplingParams(temperature=0.9, top_k=20, top_p=0.8, min_p=0.05),
]


def test_agrees_with_mini_vllm_sampler(lab):
    engine = Sampler()
    rows = np.random.default_rng(2024).standard_normal((12, 257)) * 3.0
    for i, params in enumerate(CONFIGS):
        for j, row in enumerate(rows):
            seed = 1000 * i + j
            mine = lab.sample(row, params, np.random.default_rng(seed))
            ref = engine.sample(row, params, np.random.default_rng(seed))
            assert mine == ref, f"config {i} ({params}), row {j}: yours {mine}, mini_vllm {ref}"
