"""SamplingParams validation and the sampler's filters and draw."""

import numpy as np
import pytest

from mini_vllm.sampler import (
    Sampler,
    SamplingParams,
    apply_min_p,
    apply_top_k,
    apply_top_p,
    make_generator,
    softmax,
    stable_request_seed,
)


class FixedU:
    """A stand-in generator whose random() returns preset values."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


@pytest.mark.parametrize("field,value", [
    ("temperature", -0.1), ("temperature", float("nan")), ("top_p", 0.0), ("top_p", 1.5),
    ("top_k", -2), ("top_k", 2.5), ("min_p", -0.1), ("min_p", 1.1), ("max_tokens", 0),
    ("seed", "x"), ("stop_token_ids", [-1]), ("ignore_eos", 1),
])
def test_invalid_params_raise_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SamplingParams(**{field: value})


def test_params_are_frozen_and_normalise_stop_ids_to_a_tuple():
    p = SamplingParams(stop_token_ids=[5, 6], top_k=-1)
    assert p.stop_token_ids == (5, 6)
    with pytest.raises(Exception):
        p.temperature = 0.5


def test_softmax_is_stable_and_ignores_minus_inf():
    p = softmax(np.array([1000.0, 1000.0, -np.inf]))
    np.testing.assert_allclose(p, [0.5, 0.5, 0.0])


def test_top_k_keeps_the_k_largest_and_ties_at_the_boundary():
    x = np.array([1.0, 3.0, 2.0, 3.0, 0.0])
    assert np.isfinite(apply_top_k(x, 1)).tolist() == [False, True, False, True, False]
    assert np.isfinite(apply_top_k(x, 3)).tolist() == [False, True, True, True, False]
    assert np.isfinite(apply_top_k(x, 0)).all() and np.isfinite(apply_top_k(x, -1)).all()


def test_top_p_keeps_the_crossing_token():
    x = np.log(np.array([0.1, 0.5, 0.3, 0.1]))
    assert np.isfinite(apply_top_p(x, 0.5)).tolist() == [False, True, False, False]
    assert np.isfinite(apply_top_p(x, 0.6)).tolist() == [False, True, True, False], "0.5 < 0.6: the 0.3 token crosses"
    assert np.isfinite(apply_top_p(x, 0.85)).tolist() == [True, True, True, False], "ties: lower id first"


def test_min_p_is_relative_to_the_top_token():
    x = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert np.isfinite(apply_min_p(x, 0.2)).tolist() == [True, True, True, False]


def test_greedy_takes_the_lowest_id_on_ties_and_uses_no_randomness():
    g = FixedU()
    assert Sampler().sample(np.array([0.0, 2.0, 2.0]), SamplingParams(temperature=0.0), g) == 1


def test_draw_is_the_first_index_whose_cumulative_probability_exceeds_u():
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    params = SamplingParams(temperature=1.0)
    assert [Sampler().sample(logits, params, FixedU(u)) for u in (0.0, 0.19, 0.21, 0.69, 0.71, 0.999)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("params", [SamplingParams(top_k=1), SamplingParams(top_p=0.5), SamplingParams(min_p=0.7)],
                         ids=["top_k", "top_p", "min_p"])
def test_filters_run_before_the_draw(params):
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    assert Sampler().sample(logits, params, FixedU(0.99)) == 1, "only token 1 survives the filter"


def test_temperature_flattens_or_sharpens_before_the_draw():
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    assert Sampler().sample(logits, SamplingParams(temperature=0.05), FixedU(0.9)) == 1
    assert Sampler().sample(logits, SamplingParams(temperature=100.0), FixedU(0.9)) == 2


def test_seeded_requests_repeat_and_batches_change_nothing():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 257))
    params = [SamplingParams(seed=7), SamplingParams(seed=8), SamplingParams(temperature=0.0)]
    s = Sampler()
    batch = s.sample_batch(logits, params, [make_generator(p, 0, str(i)) for i, p in enumerate(params)])
    single = [s.sample(logits[i], p, make_generator(p, 0, str(i))) for i, p in enumerate(params)]
    assert batch == single


def test_unseeded_generator_depends_on_engine_seed_and_request_id_only():
    p = SamplingParams()
    draw = lambda seed, rid: make_generator(p, seed, rid).random()  # noqa: E731
    assert draw(0, "a") == draw(0, "a") != draw(0, "b") and draw(0, "a") != draw(1, "a")
    assert stable_request_seed(0, "0") == 13913987977269637804, "same in every process (no salted hash())"


def test_sample_batch_checks_shapes():
    with pytest.raises(ValueError, match="sample_batch"):
        Sampler().sample_batch(np.zeros((2, 5)), [SamplingParams()], [None])


def test_a_masked_token_is_never_drawn_even_at_u_zero():
    # Token 0 has probability 0 (top-k drops it): cum = [0, 0.5, 1]. A draw of u = 0.0
    # must land on token 1, the first index whose cumulative probability EXCEEDS u.
    logits = np.array([-5.0, 1.0, 1.0])
    assert Sampler().sample(logits, SamplingParams(temperature=1.0, top_k=2), FixedU(0.0)) == 1


def test_temperatures_below_the_epsilon_are_greedy():
    params = SamplingParams(temperature=1e-6)
    assert params.greedy, "vLLM treats temperature < 1e-5 as greedy (_SAMPLING_EPS)"
    assert Sampler().sample(np.array([0.0, 3.0, 1.0]), params, FixedU(0.99)) == 1
