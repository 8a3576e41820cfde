"""Phase 09's sampling features, each inside the real engine loop: the logits
processors and penalties, logprobs, n > 1 fan-out and its prefix-cache sharing, and beam
search as an API-layer helper."""

import numpy as np
import pytest

from mini_vllm import LLM, LLMEngine, SamplingParams
from mini_vllm.beam_search import BeamSearchParams, get_beam_search_score
from mini_vllm.logits_processor import apply_bad_words, apply_logits_processors, apply_penalties
from mini_vllm.model import reference_generate
from mini_vllm.sampler import Sampler, make_generator

EOS = 256
PROMPT = [72, 101, 108, 108, 111]  # "Hello"
GREEDY = SamplingParams(temperature=0.0, max_tokens=8)


@pytest.fixture(scope="module")
def llm():
    return LLM(block_size=16)


def greedy_tokens(llm, **kw):
    return llm.generate(PROMPT, GREEDY.replace(**kw))[0].output_token_ids


# ---- the processors, one row at a time


def test_penalties_follow_upstream_formulas_on_one_row():
    logits = np.array([2.0, -2.0, 1.0, 0.5, 3.0])
    out = apply_penalties(logits, prompt_token_ids=[0, 1], output_token_ids=[2, 2, 3],
                          presence_penalty=0.5, frequency_penalty=0.25, repetition_penalty=2.0)
    # token 0: prompt only, positive -> /2; token 1: prompt only, negative -> *2;
    # token 2: output twice -> 1/2 - 2*0.25 - 0.5; token 3: once -> 0.5/2 - 0.25 - 0.5; token 4 untouched
    assert out.tolist() == [1.0, -4.0, -0.5, -0.5, 3.0]


def test_frequency_and_presence_ignore_prompt_tokens():
    out = apply_penalties(np.zeros(3), [0, 0, 1], [], presence_penalty=2.0, frequency_penalty=2.0)
    assert out.tolist() == [0.0, 0.0, 0.0]


def test_a_bad_word_bans_its_last_token_only_after_its_prefix():
    row = np.zeros(6)
    assert np.isneginf(apply_bad_words(row, [[4]], [])).tolist() == [False] * 4 + [True, False]
    assert not np.isneginf(apply_bad_words(row, [[1, 5]], [2])).any(), "output ends in 2, not the prefix 1"
    assert np.isneginf(apply_bad_words(row, [[1, 5]], [3, 1])[5])
    assert not np.isneginf(apply_bad_words(row, [[0, 1, 5]], [1])).any(), "longer than the output + 1: skipped"


def test_processors_run_in_upstream_order_allowed_then_bias():
    params = SamplingParams(allowed_token_ids=[0, 1], logit_bias={2: 50.0})
    out = apply_logits_processors(np.zeros(3), params)
    assert out.tolist() == [0.0, 0.0, -np.inf + 50.0], "the bias lands on an already-masked token"


def test_greedy_argmax_sees_the_processors():
    params = SamplingParams(temperature=0.0, logit_bias={0: 5.0})
    assert Sampler().sample(np.array([0.0, 1.0, 4.5]), params) == 0


def test_every_token_masked_is_an_error_not_token_zero():
    params = SamplingParams(allowed_token_ids=[1], bad_words=[[1]])
    with pytest.raises(ValueError, match="masked every token"):
        Sampler().sample(np.zeros(3), params, np.random.default_rng(0))


@pytest.mark.parametrize("field,value", [
    ("n", 0), ("n", 1.5), ("presence_penalty", 2.5), ("frequency_penalty", -3.0),
    ("repetition_penalty", 0.0), ("min_tokens", -1), ("min_tokens", 17), ("logit_bias", {-1: 1.0}),
    ("logit_bias", {1: float("nan")}), ("allowed_token_ids", []), ("allowed_token_ids", [1, -2]),
    ("bad_words", [[]]), ("bad_words", [[1, "a"]]), ("logprobs", -1),
])
def test_invalid_new_fields_raise_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SamplingParams(**{field: value})


def test_greedy_with_n_above_one_is_refused():
    with pytest.raises(ValueError, match="n must be 1 when temperature is 0"):
        SamplingParams(temperature=0.0, n=2)


def test_logit_bias_is_clamped_to_plus_minus_100():
    assert SamplingParams(logit_bias={3: 1e6, 4: -1e6}).logit_bias == {3: 100.0, 4: -100.0}


@pytest.mark.parametrize("field,value", [
    ("logit_bias", {300: 1.0}), ("allowed_token_ids", [5, 257]), ("bad_words", [[1, 999]]),
])
def test_the_engine_refuses_token_ids_outside_the_vocabulary(llm, field, value):
    with pytest.raises(ValueError, match=field):
        llm.generate(PROMPT, GREEDY.replace(**{field: value}))


# ---- inside the engine loop


def test_allowed_token_ids_confine_every_output_token(llm):
    out = greedy_tokens(llm, allowed_token_ids=[65, 66, 67])
    assert len(out) == 8 and set(out) <= {65, 66, 67}


def test_a_one_token_bad_word_never_appears(llm):
    base = greedy_tokens(llm)
    assert base[0] in base[1:], "fixture: the greedy output repeats its first token"
    assert base[0] not in greedy_tokens(llm, bad_words=[[base[0]]])


def test_a_two_token_bad_word_bans_only_the_continuation(llm):
    base = greedy_tokens(llm)
    out = greedy_tokens(llm, bad_words=[base[:2]])
    assert out[0] == base[0] and out[1] != base[1]


def test_logit_bias_forces_a_token(llm):
    assert greedy_tokens(llm, logit_bias={70: 100.0}) == [70] * 8


def test_min_tokens_holds_back_eos(llm):
    eager = llm.generate(PROMPT, GREEDY.replace(logit_bias={EOS: 100.0}))[0]
    held = llm.generate(PROMPT, GREEDY.replace(logit_bias={EOS: 100.0}, min_tokens=3))[0]
    assert (eager.output_token_ids, eager.finish_reason) == ([EOS], "stop")
    assert len(held.output_token_ids) == 4 and held.output_token_ids[-1] == EOS and held.finish_reason == "stop"
    assert EOS not in held.output_token_ids[:3]


def test_min_tokens_holds_back_stop_token_ids_too(llm):
    out = llm.generate(PROMPT, GREEDY.replace(logit_bias={70: 100.0}, stop_token_ids=[70], min_tokens=2))[0]
    assert out.output_token_ids[-1] == 70 and len(out.output_token_ids) == 3 and out.stop_reason == 70


def test_repetition_penalty_breaks_the_greedy_loop(llm):
    assert greedy_tokens(llm) == [26, 136, 185, 26, 185, 26, 185, 26], "the tiny model loops on 26, 185"
    assert greedy_tokens(llm, repetition_penalty=2.0) == [26, 136, 185, 45, 214, 19, 96, 161]


def test_repetition_penalty_reaches_prompt_tokens(llm):
    # First-step logits: token 108 (in the prompt) 1.104, token 55 (not) 0.722. Allowed
    # only these two, greedy takes 108; a penalty of 2 halves 108 to 0.552 and 55 wins.
    allowed = dict(allowed_token_ids=[108, 55], max_tokens=1)
    assert greedy_tokens(llm, **allowed) == [108]
    assert greedy_tokens(llm, **allowed, repetition_penalty=2.0) == [55]
    assert greedy_tokens(llm, **allowed, presence_penalty=2.0, frequency_penalty=2.0) == [108], (
        "frequency and presence count output tokens only")


@pytest.mark.parametrize("kw", [
    dict(repetition_penalty=1.3), dict(presence_penalty=1.5), dict(frequency_penalty=-1.0, temperature=0.8),
    dict(bad_words=[[178, 251]], min_tokens=4, temperature=1.2, top_p=0.9),
], ids=["repetition", "presence", "frequency", "bad-words+min-tokens"])
def test_engine_matches_the_unbatched_reference_with_processors(kw):
    engine = LLMEngine(block_size=4, max_num_batched_tokens=8)  # chunked prefill, many steps
    params = GREEDY.replace(max_tokens=10, **kw)
    rid = engine.add_request(PROMPT, params)
    engine.add_request([1, 2, 3, 4, 5, 6, 7], SamplingParams(max_tokens=6, seed=1))  # a neighbour
    outs = {}
    while engine.has_unfinished_requests():
        outs.update({o.request_id: o for o in engine.step()})
    ref = reference_generate(engine.engine_core.model, PROMPT, params=params,
                             generator=make_generator(params, 0, rid), eos_token_id=EOS)
    assert outs[rid].output_token_ids == ref


def test_logprobs_are_raw_log_softmax_with_the_sampled_token(llm):
    out = llm.generate(PROMPT, SamplingParams(max_tokens=3, logprobs=2, seed=5, temperature=1.5))[0]
    assert len(out.logprobs) == 3 and out.outputs[0].logprobs == out.logprobs
    for token, lp in zip(out.output_token_ids, out.logprobs):
        assert token in lp and 2 <= len(lp) <= 3 and all(v <= 0.0 for v in lp.values())
    assert llm.generate(PROMPT, GREEDY)[0].logprobs is None


# ---- n > 1


def test_n4_returns_four_completions_from_one_request(llm):
    (out,) = llm.generate(PROMPT, SamplingParams(n=4, max_tokens=5, seed=3))
    assert [c.index for c in out.outputs] == [0, 1, 2, 3]
    assert len({tuple(c.token_ids) for c in out.outputs}) == 4, "seed + index: four different streams"


def test_seeded_child_i_is_the_request_with_seed_plus_i(llm):
    (parent,) = llm.generate(PROMPT, SamplingParams(n=3, max_tokens=5, seed=10))
    singles = llm.generate([PROMPT] * 3, [SamplingParams(max_tokens=5, seed=10 + i) for i in range(3)])
    assert [c.token_ids for c in parent.outputs] == [s.output_token_ids for s in singles]


def test_children_hit_the_first_childs_prompt_blocks():
    engine = LLMEngine(block_size=16)
    prompt = list(range(40, 73))  # 33 tokens: 2 full blocks + 1 token
    (out,) = engine.generate(prompt, SamplingParams(n=4, max_tokens=3, seed=0))
    stats = engine.engine_core.kv_cache_manager.prefix_cache_stats
    assert (stats.requests, stats.queries, stats.hits) == (4, 4 * 33, 3 * 32)
    assert out.num_cached_tokens == 96, "summed over the children: 0 + 32 + 32 + 32"
    assert engine.step_stats[0].num_scheduled_tokens == {"0_0": 33, "1_0": 1, "2_0": 1, "3_0": 1}


def test_children_ids_follow_upstream_and_the_parent_id_is_returned():
    engine = LLMEngine()
    rid = engine.add_request(PROMPT, SamplingParams(n=2, max_tokens=2), request_id="job")
    assert rid == "job" and set(engine.scheduler.requests) == {"0_job", "1_job"}
    with pytest.raises(ValueError, match="duplicate request id 'job'"):
        engine.add_request(PROMPT, GREEDY, request_id="job")
    outs = []
    while engine.has_unfinished_requests():
        outs += engine.step()
    assert [o.request_id for o in outs] == ["job"] and len(outs[0].outputs) == 2


def test_aborting_the_parent_aborts_every_child():
    engine = LLMEngine()
    rid = engine.add_request(PROMPT, SamplingParams(n=3, max_tokens=50))
    engine.step()
    assert engine.abort_request(rid)
    (out,) = engine.step()
    assert out.request_id == rid and [c.finish_reason for c in out.outputs] == ["abort"] * 3
    assert not engine.has_unfinished_requests() and engine.abort_request(rid) is False


def test_a_failed_batch_leaves_no_parent_behind():
    engine = LLMEngine()
    with pytest.raises(ValueError):
        engine.generate([PROMPT, PROMPT], [SamplingParams(n=2), SamplingParams(logit_bias={999: 1.0})])
    assert not engine._parents and not engine._live and not engine.has_unfinished_requests()


# ---- beam search


def test_beam_width_one_is_greedy(llm):
    (res,) = llm.beam_search([PROMPT], BeamSearchParams(beam_width=1, max_tokens=6))
    assert res.sequences[0].output_token_ids == greedy_tokens(llm, max_tokens=6)


def test_beam_scores_are_the_models_log_probabilities(llm):
    (res,) = llm.beam_search([PROMPT], BeamSearchParams(beam_width=3, max_tokens=3))
    model = llm.llm_engine.engine_core.model
    for beam in res.sequences:
        total = 0.0
        for i in range(len(PROMPT), len(beam.tokens)):
            logits = model.forward_dense(beam.tokens[:i], 0, model.empty_kv_state())
            total += float(logits[beam.tokens[i]] - np.logaddexp.reduce(logits))
        assert beam.cum_logprob == pytest.approx(total, abs=1e-9)
    scores = [get_beam_search_score(b.tokens, b.cum_logprob, EOS) for b in res.sequences]
    assert scores == sorted(scores, reverse=True)


def test_two_step_beam_search_is_exact_over_its_surviving_first_tokens(llm):
    """Against brute force over every continuation of a one-token prompt: after step 1
    the width-4 beams are the 4 likeliest first tokens; step 2 offers each beam its
    2 * 4 likeliest next tokens, which always include its best one. So the winner is the
    best (a, b) with a among those 4 and b anything. length_penalty=0 ranks by summed
    log-probability alone."""
    model = llm.llm_engine.engine_core.model
    prompt = [72]

    def logprobs(tokens):
        x = model.forward_dense(tokens, 0, model.empty_kv_state())
        return x - np.logaddexp.reduce(x)

    lp1 = logprobs(prompt)
    survivors = np.argsort(-lp1, kind="stable")[:4].tolist()
    totals = {}
    for a in range(257):
        lp2 = logprobs(prompt + [a])
        totals.update({(a, b): lp1[a] + lp2[b] for b in range(257)})
    expected = max((k for k in totals if k[0] in survivors), key=totals.get)
    params = BeamSearchParams(beam_width=4, max_tokens=2, ignore_eos=True, length_penalty=0.0)
    (res,) = llm.beam_search([prompt], params)
    assert tuple(res.sequences[0].output_token_ids) == expected
    assert res.sequences[0].cum_logprob == pytest.approx(totals[expected], abs=1e-9)
    assert max(totals, key=totals.get)[0] in survivors or totals[max(totals, key=totals.get)] >= totals[expected]
