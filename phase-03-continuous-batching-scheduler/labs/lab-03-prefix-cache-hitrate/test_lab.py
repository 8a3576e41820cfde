"""Lab 03-03 spec: predicted prefix-cache hits, mini_vllm's meter (the counters vLLM
exports), the two denominators, and, on a GPU, real vLLM 0.22.1 against the prediction."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def prompts(lab):
    return lab.system_prompt_workload()


@pytest.fixture(scope="module")
def whole_run(lab, prompts):
    return {caching: lab.measure([prompts], caching)[0] for caching in (False, True)}


# ---- TODO 1: the prediction


def test_followers_are_predicted_to_hit_the_15_system_blocks(lab, prompts):
    assert lab.predict_hits(prompts, 16) == [0] + [240] * 15, (
        "240 shared tokens = 15 full blocks; the 16th block holds each request's own tail")


def test_the_first_differing_block_ends_the_hit(lab):
    a = list(range(10, 58))                       # 3 blocks of 16
    b = a[:16] + [99] + a[17:] + [5]              # block 2 differs, block 3 equal again
    assert lab.predict_hits([a, b], 16) == [0, 16], "hashes are chained: block 3 cannot hit after block 2 missed"


def test_a_hit_never_covers_the_last_prompt_token(lab):
    p = list(range(10, 42))                       # exactly 2 blocks of 16
    assert lab.predict_hits([p, p, p[:17]], 16) == [0, 16, 16], (
        "an identical 32-token prompt reuses (32 - 1) // 16 = 1 block, not 2")


# ---- TODO 2: the meter


def test_mini_vllm_hands_over_exactly_the_predicted_tokens(lab, prompts, whole_run):
    on = whole_run[True]
    assert on.num_cached_tokens == lab.predict_hits(prompts, 16)
    assert (on.hits, on.queries) == (3600, 4096), "hits: 15 x 240; queries: every prompt token, 16 x 256"


def test_the_whole_run_hit_rate_is_87_9_percent(lab, whole_run):
    assert whole_run[True].hit_rate == pytest.approx(0.87890625), "3600 / 4096: the pioneer's 256 misses are counted"


def test_with_caching_off_nothing_is_looked_up(lab, whole_run):
    off = whole_run[False]
    assert (off.hits, off.queries, off.hit_rate) == (0, 0, 0.0)
    assert off.num_cached_tokens == [0] * 16


def test_windows_read_0_percent_then_93_75_percent(lab, prompts):
    first, rest = lab.measure([prompts[:1], prompts[1:]])
    assert (first.hits, first.queries) == (0, 256), "request 0 finds an empty cache"
    assert (rest.hits, rest.queries) == (3600, 3840) and rest.hit_rate == 0.9375, (
        "after the pioneer, each follower finds 240 of its 256 tokens: 15 / 16")


def test_prefill_falls_from_4096_to_496_tokens(lab, whole_run):
    assert (whole_run[False].prefill_tokens, whole_run[True].prefill_tokens) == (4096, 496), "256 + 15 x 16"


# ---- TODO 3: the identity between the two meters


def test_prefill_reduction_follows_from_the_hit_rate(lab, whole_run):
    on, off = whole_run[True], whole_run[False]
    assert off.prefill_tokens / on.prefill_tokens == pytest.approx(lab.prefill_reduction(on.hit_rate))
    assert lab.prefill_reduction(on.hit_rate) == pytest.approx(8.258, abs=1e-3)


def test_a_93_75_percent_hit_rate_means_16x_less_prefill(lab):
    assert lab.prefill_reduction(0.9375) == pytest.approx(16.0)
    assert lab.prefill_reduction(0.75) == pytest.approx(4.0), "4x less prefill needs only a 75% hit rate"


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), system_len=st.integers(0, 70), tail_len=st.integers(1, 20))
def test_mini_vllm_matches_the_prediction_on_any_shared_prefix_workload(n, system_len, tail_len):
    from course.labkit import load_lab

    lab = load_lab(__file__)
    prompts = lab.system_prompt_workload(n, system_len, tail_len)
    (meter,) = lab.measure([prompts], True, block_size=8, max_tokens=2)
    assert meter.num_cached_tokens == lab.predict_hits(prompts, 8)
    assert meter.hits == sum(meter.num_cached_tokens)


# ---- GPU: real vLLM 0.22.1 on the same token ids


@pytest.mark.gpu
@pytest.mark.parametrize("caching", [True, False], ids=["caching-on", "caching-off"])
def test_vllm_reports_the_predicted_hits(lab, gpu_device, tiny_llama_dir, figures, prompts, caching):
    from course.gpu_fixtures import run_vllm

    run = run_vllm(tiny_llama_dir, [{"prompt_token_ids": p} for p in prompts],
                   llm_kwargs={"enable_prefix_caching": caching, "block_size": 16, "enforce_eager": True},
                   sampling={"max_tokens": 4, "ignore_eos": True}, metrics=True)
    metrics = run.extra["metrics"]
    hits, queries = metrics.get("vllm:prefix_cache_hits", 0), metrics.get("vllm:prefix_cache_queries", 0)
    cached = [o["num_cached_tokens"] for o in run.outputs]
    tag = "on" if caching else "off"
    figures(f"lab03.caching_{tag}.prefix_cache_hits", hits)
    figures(f"lab03.caching_{tag}.prefix_cache_queries", queries)
    figures(f"lab03.caching_{tag}.hit_rate", round(hits / queries, 4) if queries else 0.0)
    figures(f"lab03.caching_{tag}.num_cached_tokens", cached)
    figures(f"lab03.caching_{tag}.generate_s", round(run.generate_s, 4))
    predicted = lab.predict_hits(prompts, 16) if caching else [0] * len(prompts)
    assert cached == predicted, "vLLM's per-request num_cached_tokens against predict_hits"
    assert hits == sum(predicted)
    assert queries == (sum(map(len, prompts)) if caching else 0), "with caching off vLLM does not look anything up"
