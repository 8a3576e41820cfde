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


def test_softmax_returns_float64_for_any_input_dtype(lab):
    for row in (np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0], dtype=np.float32), [1.0, 2.0, 3.0]):
        p = lab.softmax(row)
        assert p.dtype == np.float64, f"README task 1: float64 out for {type(row).__name__} input, got {p.dtype}"
        np.testing.assert_allclose(p, [0.09003057, 0.24472847, 0.66524096], rtol=1e-7)


def test_filters_never_modify_their_input(lab):
    row = np.array([0.1, 2.0, -1.0, 1.5, 0.3])
    keep = row.copy()
    lab.apply_top_k(row, 2), lab.apply_top_p(row, 0.5)
    assert row.tolist() == keep.tolist(), "README tasks 2-3: return a new row, leave the caller's logits alone"
    for out in (lab.apply_top_k(row, 0), lab.apply_top_p(row, 1.0)):
        assert out is not row, "a disabled filter returns a copy, not the caller's own array"


def test_top_k_one_below_the_vocabulary_drops_exactly_the_minimum(lab):
    out = lab.apply_top_k(np.array([0.1, 2.0, -1.0, 1.5, 0.3]), 4)
    assert finite(out).tolist() == [True, True, False, True, True], "README task 2: k = 4 of 5 drops only the smallest"


def test_top_p_reaching_p_exactly_is_enough(lab):
    logits = np.log(np.array([0.5, 0.25, 0.25]))  # softmax gives exactly 0.5, 0.25, 0.25
    assert finite(lab.apply_top_p(logits, 0.5)).tolist() == [True, False, False], (
        "README task 3: a running sum equal to p already reaches p (>=, not >)"
    )
    assert finite(lab.apply_top_p(logits, 0.75)).tolist() == [True, True, False]


def test_top_p_ranks_many_equal_logits_by_id(lab):
    logits = np.zeros(40)
    logits[[5, 17]] = -1.0
    # 38 equal tokens of weight 1 and two of weight 1/e: p = 0.25 needs ceil(0.25 * 38.74) = 10 of them.
    kept = np.nonzero(finite(lab.apply_top_p(logits, 0.25)))[0].tolist()
    assert kept == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10], (
        f"README task 3: among equal logits the lower ids rank first (a stable sort), kept {kept}"
    )


class ScriptedGenerator:
    """Stands in for np.random.Generator: returns fixed draws and counts them."""

    def __init__(self, *draws):
        self.draws, self.calls = list(draws), 0

    def random(self):
        self.calls += 1
        return self.draws.pop(0)


def test_draw_returns_first_id_whose_sum_exceeds_u(lab):
    logits = np.log(np.array([0.5, 0.25, 0.25]))  # cumulative sums exactly 0.5, 0.75, 1.0
    assert lab.sample(logits, SamplingParams(temperature=1.0), ScriptedGenerator(0.5)) == 1, (
        "README task 4: u = 0.5 is not below the first sum 0.5, so the token is 1 (the first sum greater than u)"
    )
    assert lab.sample(logits, SamplingParams(temperature=1.0), ScriptedGenerator(0.4999)) == 0
    assert lab.sample(logits, SamplingParams(temperature=1.0), ScriptedGenerator(0.75)) == 2


def test_one_draw_per_sampled_token_and_none_when_greedy(lab):
    logits = np.array([0.5, 3.0, 2.9, -1.0])
    gen = ScriptedGenerator(0.3)
    lab.sample(logits, SamplingParams(temperature=0.7, top_k=3, top_p=0.9), gen)
    assert gen.calls == 1, f"README task 4: exactly one generator.random() per token, got {gen.calls}"
    gen = ScriptedGenerator()
    assert lab.sample(logits, SamplingParams(temperature=1e-6), gen) == 1 and gen.calls == 0, (
        "temperature 1e-6 is below the greedy threshold (params.greedy): argmax, and no draw at all"
    )
