"""Lab 09-02 spec: n children as upstream builds them, the exact prefix-cache hits they
earn, mini_vllm's counters against the prediction, and, on a GPU, vLLM 0.22.1's."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm import SamplingParams
from mini_vllm.parallel_sampling import ParentRequest


# ---- TODO 1: the children


def test_children_ids_and_seeds_follow_upstream(lab):
    kids = lab.child_requests("req", SamplingParams(n=3, seed=10, temperature=0.8))
    assert [cid for cid, _ in kids] == ["0_req", "1_req", "2_req"]
    assert [(p.n, p.seed, p.temperature) for _, p in kids] == [(1, 10, 0.8), (1, 11, 0.8), (1, 12, 0.8)]


def test_unseeded_children_stay_unseeded(lab):
    assert [p.seed for _, p in lab.child_requests("r", SamplingParams(n=2))] == [None, None]


def test_children_match_mini_vllms_parent_request(lab):
    params = SamplingParams(n=4, seed=3, top_k=5)
    parent = ParentRequest("x", params)
    assert lab.child_requests("x", params) == [parent.get_child_info(i) for i in range(4)]


# ---- TODO 2: the prediction


def test_a_33_token_prompt_gives_three_children_two_blocks_each(lab):
    assert lab.predict_cached_tokens(33, 4, 16) == [0, 32, 32, 32]


def test_a_hit_never_covers_the_last_prompt_token(lab):
    assert lab.predict_cached_tokens(32, 4, 16) == [0, 16, 16, 16], "(32 - 1) // 16 = 1 block, not 2"
    assert lab.predict_cached_tokens(15, 3, 16) == [0, 0, 0], "no full block: nothing to share"


def test_n_equal_one_shares_nothing(lab):
    assert lab.predict_cached_tokens(100, 1, 16) == [0]


# ---- TODO 3: rate and prefill


def test_the_hit_rate_is_72_73_percent_not_75(lab):
    assert lab.predict_hit_rate(33, 4, 16) == pytest.approx(96 / 132)
    assert round(lab.predict_hit_rate(33, 4, 16), 4) == 0.7273


def test_75_percent_is_only_the_limit(lab):
    rates = [lab.predict_hit_rate(16 * k + 1, 4, 16) for k in (2, 16, 256)]
    assert rates == sorted(rates) and all(r < 0.75 for r in rates)
    assert rates[-1] > 0.7498, "4097 tokens: 3 x 4096 / (4 x 4097)"


def test_prefill_falls_from_132_to_36_tokens(lab):
    assert lab.predict_prefill_tokens(33, 4, 16) == 36, "33 for the first child + 1 for each of the other three"


# ---- TODO 4: the measurement


@pytest.fixture(scope="module")
def on(lab):
    return lab.measure(lab.workload_prompt(33), 4)


def test_mini_vllm_counts_the_predicted_hits(lab, on):
    assert (on.hits, on.queries) == (96, 132)
    assert on.num_cached_tokens == sum(lab.predict_cached_tokens(33, 4, 16))
    assert on.prefill_tokens == 36


def test_without_caching_each_child_prefills_the_whole_prompt(lab):
    off = lab.measure(lab.workload_prompt(33), 4, enable_prefix_caching=False)
    assert (off.hits, off.prefill_tokens, off.num_cached_tokens) == (0, 132, 0)


def test_four_children_give_four_different_completions(on):
    assert len(on.completions) == 4 and len({tuple(c) for c in on.completions}) == 4


@settings(max_examples=15, deadline=None)
@given(prompt_len=st.integers(1, 70), n=st.integers(1, 5), block_size=st.sampled_from([4, 8, 16]))
def test_mini_vllm_matches_the_prediction_for_any_shape(prompt_len, n, block_size):
    from course.labkit import load_lab

    lab = load_lab(__file__)
    meter = lab.measure(lab.workload_prompt(prompt_len), n, block_size=block_size, max_tokens=2)
    assert meter.hits == sum(lab.predict_cached_tokens(prompt_len, n, block_size))
    assert meter.queries == n * prompt_len
    assert meter.prefill_tokens == lab.predict_prefill_tokens(prompt_len, n, block_size)


# ---- GPU: real vLLM 0.22.1, same token ids


@pytest.mark.gpu
def test_vllm_reports_the_predicted_hits_for_n4(lab, gpu_device, tiny_llama_dir, figures):
    from course.gpu_fixtures import run_vllm

    prompt = lab.workload_prompt(33)
    run = run_vllm(tiny_llama_dir, [{"prompt_token_ids": prompt}],
                   llm_kwargs={"enable_prefix_caching": True, "block_size": 16, "enforce_eager": True},
                   sampling={"n": 4, "temperature": 1.0, "seed": 0, "max_tokens": 4, "ignore_eos": True}, metrics=True)
    metrics = run.extra["metrics"]
    hits, queries = metrics.get("vllm:prefix_cache_hits", 0), metrics.get("vllm:prefix_cache_queries", 0)
    figures("lab02.n4.prefix_cache_hits", hits)
    figures("lab02.n4.prefix_cache_queries", queries)
    figures("lab02.n4.hit_rate", round(hits / queries, 4) if queries else 0.0)
    assert (hits, queries) == (sum(lab.predict_cached_tokens(33, 4, 16)), 4 * 33), (
        "children 1-3 should each hit the first child's two full blocks")
    assert hits / queries == pytest.approx(lab.predict_hit_rate(33, 4, 16))
