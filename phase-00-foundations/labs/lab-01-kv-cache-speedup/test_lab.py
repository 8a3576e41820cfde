"""Lab 00-01 spec: caching K/V changes the work, never the tokens."""
from hypothesis import given, settings
from hypothesis import strategies as st

PROMPT = [3, 14, 15, 9, 26]  # P = 5, the README's example


def test_both_produce_identical_tokens(lab):
    uncached, _ = lab.generate_no_cache(PROMPT, 10)
    cached, _ = lab.generate_with_cache(PROMPT, 10)
    assert uncached == cached, "the cache must not change the output: check the position you give each new K/V row"


def test_output_is_prompt_then_exact_greedy_continuation(lab):
    tokens, _ = lab.generate_with_cache(PROMPT, 10)
    assert tokens == PROMPT + [29, 29, 29, 43, 28, 28, 28, 28, 28, 28], (
        "output must be the prompt followed by next_token's picks, one per step"
    )


def test_no_cache_work_is_the_arithmetic_series(lab):
    _, work = lab.generate_no_cache(PROMPT, 10)
    assert work == 95, f"5+6+...+14 = 95 units expected, got {work}: step i processes P+i tokens"


def test_cached_work_is_one_unit_per_token(lab):
    _, work = lab.generate_with_cache(PROMPT, 10)
    assert work == 15, f"P + n_new = 15 units expected, got {work}: each token's K/V is computed once"


def test_zero_new_tokens_still_pays_the_prefill(lab):
    assert lab.generate_no_cache(PROMPT, 0) == (PROMPT, 0), "README task 1: n_new = 0 runs no step, so no work"
    assert lab.generate_with_cache(PROMPT, 0) == (PROMPT, 5), "README task 2: the prefill runs even when n_new = 0"


def test_one_new_token_from_a_one_token_prompt(lab):
    assert lab.generate_no_cache([7], 1)[1] == 1 and lab.generate_with_cache([7], 1)[1] == 2, (
        "README tasks 1-2: one step over one token costs 1 uncached; cached it is the prefill (1) plus the new row (1)"
    )


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    prompt=st.lists(st.integers(0, 63), min_size=1, max_size=12),
    n_new=st.integers(0, 30),
)
def test_work_formulas_and_equality_hold_for_any_prompt(lab, prompt, n_new):
    a, work_a = lab.generate_no_cache(prompt, n_new)
    b, work_b = lab.generate_with_cache(prompt, n_new)
    p = len(prompt)
    assert a == b, "README task 2: the cache must not change the tokens"
    assert a[:p] == prompt and len(a) == p + n_new, "the prompt, unchanged, then n_new tokens"
    assert work_a == sum(range(p, p + n_new)), "no-cache work must be sum(P .. P+n_new-1)"
    assert work_b == p + n_new, "cached work must be P + n_new"


def test_work_ratio_grows_with_length(lab):
    _, slow = lab.generate_no_cache(PROMPT, 1000)
    _, fast = lab.generate_with_cache(PROMPT, 1000)
    assert (slow, fast) == (504_500, 1_005)
    assert round(slow / fast, 1) == 502.0, "at n=1000 the gap is ~n/2, not a constant factor"


def no_cache_units(p, n):
    """The closed form the hypothesis test checks against your generator."""
    return n * p + n * (n - 1) // 2


def test_closed_form_matches_and_scales(lab):
    _, work = lab.generate_no_cache([1] * 7, 13)
    assert work == no_cache_units(7, 13)
    # EXERCISES.md: a 1,000-token prompt and 2,000 new tokens, without and with a cache.
    assert (no_cache_units(1000, 2000), 1000 + 2000) == (3_999_000, 3_000)
    assert no_cache_units(1000, 2000) // 3000 == 1333
