"""Lab 03-02 spec: the prefill-step formula, checked against the engine, and chunked
prefill producing exactly the unchunked run's tokens."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mini_vllm import SamplingParams, TinyTransformer, ModelConfig, reference_generate

ENGINE = dict(block_size=4, num_blocks=96, max_model_len=128)
PROMPTS = [[(7 * i) % 250 + 1 for i in range(100)], [(3 * i) % 200 + 5 for i in range(37)], [9, 8, 7, 6, 5]]


# ---- TODO 1: the formula


def test_threshold_zero_means_the_budget_is_the_only_chunk_limit(lab):
    assert lab.num_prefill_steps(100, 0, 2048) == 1, "threshold 0 is 'off', not 'chunks of 0'"


def test_a_partial_last_chunk_costs_a_whole_step(lab):
    assert lab.num_prefill_steps(100, 16, 2048) == 7, "6 chunks of 16 and one of 4"


def test_exact_division_adds_no_extra_step(lab):
    assert lab.num_prefill_steps(96, 16, 2048) == 6, "96 = 6 x 16: no seventh step"


def test_the_budget_binds_when_the_threshold_is_larger(lab):
    assert lab.num_prefill_steps(100, 64, 32) == 4, "a 64 threshold is moot under a 32-token budget"


def test_a_4096_token_prompt_at_threshold_512(lab):
    assert lab.num_prefill_steps(4096, 512, 2048) == 8


def test_a_16k_prompt_at_threshold_512_under_an_8192_budget(lab):
    assert lab.num_prefill_steps(16384, 512, 8192) == 32, "EXERCISES.md, design question 1"


def test_a_one_token_prompt_takes_one_step(lab):
    assert lab.num_prefill_steps(1, 16, 2048) == 1


# ---- TODO 2 + 3: the engine agrees with the formula


@pytest.mark.parametrize("threshold,budget", [(0, 2048), (16, 2048), (64, 32), (7, 8), (100, 2048)])
def test_formula_matches_the_engine(lab, threshold, budget):
    _, schedule = lab.generate(PROMPTS[:1], max_tokens=2, long_prefill_token_threshold=threshold,
                               max_num_batched_tokens=budget, **ENGINE)
    assert lab.measured_prefill_steps(schedule, "0", 100) == lab.num_prefill_steps(100, threshold, budget)


def test_generate_returns_outputs_in_input_order_and_the_schedule(lab):
    outputs, schedule = lab.generate(PROMPTS, max_tokens=3, **ENGINE)
    assert [len(o) for o in outputs] == [3, 3, 3], "ignore_eos: every request runs to max_tokens"
    assert schedule[0] == {"0": 100, "1": 37, "2": 5}, "one roomy step prefills all three prompts"
    assert schedule[1:] == [{"0": 1, "1": 1, "2": 1}] * 2


# ---- the safety property


def test_chunked_prefill_matches_unchunked_output(lab):
    whole, whole_sched = lab.generate(PROMPTS, max_tokens=8, **ENGINE)
    chunked, sched = lab.generate(PROMPTS, max_tokens=8, long_prefill_token_threshold=16,
                                  max_num_batched_tokens=24, **ENGINE)
    assert max(n for s in sched for n in s.values()) <= 16 and len(sched) > len(whole_sched), (
        "the chunked run must really chunk, or the comparison proves nothing")
    assert chunked == whole, "chunking may move work between steps, never change a token"


def test_chunked_prefill_matches_unchunked_output_when_sampling(lab):
    whole, _ = lab.generate(PROMPTS, max_tokens=8, temperature=0.8, **ENGINE)
    chunked, _ = lab.generate(PROMPTS, max_tokens=8, temperature=0.8, long_prefill_token_threshold=5,
                              max_num_batched_tokens=7, **ENGINE)
    assert chunked == whole, "each request draws from its own generator, once per sampled token"


def test_chunked_output_equals_the_unbatched_reference(lab):
    chunked, _ = lab.generate(PROMPTS, max_tokens=8, long_prefill_token_threshold=9,
                              max_num_batched_tokens=11, **ENGINE)
    model = TinyTransformer(ModelConfig(max_model_len=128))
    ref = [reference_generate(model, p, params=SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True))
           for p in PROMPTS]
    assert chunked == ref, "paged, batched, chunked decoding must equal one-request dense decoding"


@settings(max_examples=15, deadline=None)
@given(
    lens=st.lists(st.integers(1, 48), min_size=1, max_size=3),
    threshold=st.integers(0, 20),
    budget=st.integers(4, 40),
)
def test_any_chunking_gives_the_same_tokens(lens, threshold, budget):
    from course.labkit import load_lab

    lab = load_lab(__file__)
    prompts = [[(11 * i + j) % 250 + 1 for i in range(n)] for j, n in enumerate(lens)]
    whole, _ = lab.generate(prompts, max_tokens=4, **ENGINE)
    chunked, _ = lab.generate(prompts, max_tokens=4, long_prefill_token_threshold=threshold,
                              max_num_batched_tokens=budget, **ENGINE)
    assert chunked == whole
