"""End to end: chunking, prefix caching and preemption change timing and memory, never
output. Every comparison is against the unbatched, unpaged reference (model.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.engine import LLM, EngineConfig, EngineCore, LLMEngine
from mini_vllm.model import reference_generate
from mini_vllm.request import Request, RequestStatus
from mini_vllm.sampler import SamplingParams, make_generator

GREEDY = SamplingParams(temperature=0.0, max_tokens=8)
SAMPLED = SamplingParams(temperature=0.9, top_k=40, top_p=0.95, max_tokens=8)
SHARED = "You are a terse assistant. Answer: "
PROMPTS = [SHARED + q for q in ("2+2?", "capital of France?", "a haiku", "why is the sky blue?")]


def run(prompts, params, **kw):
    engine = LLMEngine(**kw)
    outputs = engine.generate(prompts, params)
    assert_clean(engine)
    return engine, outputs


def assert_clean(engine):
    """Nothing leaked: no request, no generator, every block back in the free queue."""
    core = engine.engine_core
    assert not engine.has_unfinished_requests()
    assert core.scheduler.requests == {} and core.generators == {} and core.metrics == {}
    kv = core.kv_cache_manager
    assert kv.req_to_blocks == {} and kv.num_free_blocks == core.config.num_blocks - 1
    kv.block_pool.check_invariants()


def reference(engine, out, params):
    core = engine.engine_core
    return reference_generate(
        core.model, out.prompt_token_ids, params=params,
        generator=make_generator(params, core.config.seed, out.request_id),
        eos_token_id=engine.tokenizer.eos_token_id, max_model_len=core.config.max_model_len,
    )


def tokens(outputs):
    return [o.output_token_ids for o in outputs]


@pytest.mark.parametrize("params", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_batched_engine_matches_unbatched_reference(params):
    engine, outs = run(PROMPTS, params, block_size=4, num_blocks=64, max_model_len=128)
    assert tokens(outs) == [reference(engine, o, params) for o in outs]


def test_chunked_prefill_matches_unchunked_output():
    _, whole = run(PROMPTS, SAMPLED, block_size=4, num_blocks=64, max_model_len=128)
    engine, chunked = run(PROMPTS, SAMPLED, block_size=4, num_blocks=64, max_model_len=128,
                          max_num_batched_tokens=7, long_prefill_token_threshold=5)
    assert max(s.total_num_scheduled_tokens for s in engine.step_stats) <= 7
    assert engine.step_stats[0].num_scheduled_tokens == {"0": 5, "1": 2}, "prefills really were chunked"
    assert tokens(chunked) == tokens(whole)


def test_prefix_caching_matches_no_caching_output():
    _, plain = run(PROMPTS, SAMPLED, block_size=4, num_blocks=64, max_model_len=128, enable_prefix_caching=False)
    engine = LLMEngine(block_size=4, num_blocks=64, max_model_len=128)
    first = engine.generate(PROMPTS[:1], SAMPLED)
    rest = engine.generate(PROMPTS[1:], SAMPLED)
    assert_clean(engine)
    assert [o.num_cached_tokens for o in rest] == [32, 32, 32], "35 shared tokens -> 8 full blocks of 4 hit"
    assert tokens(first + rest) == tokens(plain)


def test_same_step_prefix_hit_reads_blocks_written_in_that_step():
    # All prompts arrive together: followers hit the leader's blocks in the very step that
    # fills them (upstream caches at allocation). The model must write before it reads.
    engine, outs = run(PROMPTS, GREEDY, block_size=4, num_blocks=64, max_model_len=128)
    assert [o.num_cached_tokens for o in outs] == [0, 32, 32, 32]
    assert tokens(outs) == [reference(engine, o, GREEDY) for o in outs]


def test_preemption_matches_roomy_cache_output():
    params = SamplingParams(temperature=0.9, max_tokens=24)
    _, roomy = run(PROMPTS, params, block_size=4, num_blocks=128, max_model_len=64)
    engine, cramped = run(PROMPTS, params, block_size=4, num_blocks=17, max_model_len=64)
    assert sum(s.num_preempted for s in engine.step_stats) > 0, "the cramped cache must force preemption"
    assert any(o.metrics["num_preemptions"] for o in cramped)
    assert tokens(cramped) == tokens(roomy)


def test_preemption_with_prefix_caching_matches_output():
    params = SamplingParams(temperature=0.0, max_tokens=24)
    _, roomy = run(PROMPTS, params, block_size=4, num_blocks=128, max_model_len=64, enable_prefix_caching=False)
    engine, cramped = run(PROMPTS, params, block_size=4, num_blocks=17, max_model_len=64)
    assert sum(s.num_preempted for s in engine.step_stats) > 0
    assert tokens(cramped) == tokens(roomy)


def test_a_request_samples_the_same_tokens_alone_or_in_a_batch():
    alone = LLMEngine(block_size=4, num_blocks=64, max_model_len=128)
    alone.add_request(PROMPTS[2], SAMPLED, request_id="x")
    out_alone = [o for _ in range(20) for o in alone.step()]
    crowd = LLMEngine(block_size=4, num_blocks=64, max_model_len=128)
    for i, p in enumerate(PROMPTS):
        crowd.add_request(p, SAMPLED, request_id="x" if i == 2 else f"other{i}")
    out_crowd = {o.request_id: o for _ in range(20) for o in crowd.step()}
    assert out_alone[0].output_token_ids == out_crowd["x"].output_token_ids


def test_toy_model_engine_matches_its_reference():
    engine, outs = run(PROMPTS, SAMPLED, model="toy", block_size=4, num_blocks=64, max_model_len=128,
                       max_num_batched_tokens=9)
    assert tokens(outs) == [reference(engine, o, SAMPLED) for o in outs]


MAX_MODEL_LEN = 32
workloads = st.lists(
    st.tuples(
        st.integers(0, 4),                                  # shared-prefix family (4: a max-length prompt)
        st.lists(st.integers(97, 99), min_size=0, max_size=12),  # own suffix
        st.integers(1, 10),                                 # max_tokens
        st.integers(0, 3),                                  # arrival step
        st.one_of(st.none(), st.integers(0, 4)),            # abort this many steps after arrival
        st.booleans(),                                      # also try to add it again under its id
    ),
    min_size=1, max_size=6,
)
configs = st.fixed_dictionaries(dict(
    block_size=st.sampled_from([1, 2, 4, 8]),
    extra_blocks=st.integers(0, 6),
    max_num_batched_tokens=st.integers(1, 48),
    long_prefill_token_threshold=st.sampled_from([0, 3, 16]),
    enable_prefix_caching=st.booleans(),
    max_num_seqs=st.integers(1, 6),
    temperature=st.sampled_from([0.0, 0.8]),
))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(workload=workloads, cfg=configs)
def test_random_workloads_finish_match_reference_and_leak_nothing(workload, cfg):
    """Random arrivals, prompts up to and past max_model_len, aborts (also mid-prefill)
    and duplicate ids: every accepted request finishes, matches the unbatched reference
    (an aborted one, a prefix of it), refused ones leave no trace, and nothing leaks."""
    block_size = cfg["block_size"]
    engine = LLMEngine(
        block_size=block_size, num_blocks=-(-MAX_MODEL_LEN // block_size) + 1 + cfg["extra_blocks"],
        max_num_batched_tokens=cfg["max_num_batched_tokens"], max_model_len=MAX_MODEL_LEN,
        long_prefill_token_threshold=cfg["long_prefill_token_threshold"],
        enable_prefix_caching=cfg["enable_prefix_caching"], max_num_seqs=cfg["max_num_seqs"],
    )
    prefixes = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [1, 2, 3, 4, 9], [40, 41], [], [7] * (MAX_MODEL_LEN - 12)]
    arrivals, params_of, aborts = {}, {}, {}
    for i, (family, suffix, max_tokens, arrival, abort_after, dup) in enumerate(workload):
        prompt = (prefixes[family] + suffix) or [65]
        params = SamplingParams(temperature=cfg["temperature"], max_tokens=max_tokens)
        arrivals.setdefault(arrival, []).append((str(i), prompt, params, dup))
        params_of[str(i)] = params
        if abort_after is not None:
            aborts.setdefault(arrival + abort_after, []).append(str(i))
    done, accepted, aborted = {}, set(), set()
    for step in range(400):
        for rid, prompt, params, dup in arrivals.pop(step, []):
            if len(prompt) >= MAX_MODEL_LEN:
                with pytest.raises(ValueError, match="max_model_len"):
                    engine.add_request(prompt, params, request_id=rid)
                continue
            engine.add_request(prompt, params, request_id=rid)
            accepted.add(rid)
            if dup:
                with pytest.raises(ValueError, match="duplicate"):
                    engine.add_request(prompt, params, request_id=rid)
        for rid in aborts.pop(step, []):
            if rid in accepted and rid not in done and engine.abort_request(rid):
                aborted.add(rid)
        if not arrivals and not engine.has_unfinished_requests():
            break
        done.update((o.request_id, o) for o in engine.step())
    else:
        raise AssertionError("engine stalled: requests still pending after 400 steps")
    assert all(s.total_num_scheduled_tokens <= cfg["max_num_batched_tokens"] for s in engine.step_stats)
    assert set(done) == accepted, "every accepted request finishes, and only those"
    for rid, out in done.items():
        expected = reference(engine, out, params_of[rid])
        if rid in aborted:
            assert out.finish_reason == "abort"
            assert out.output_token_ids == expected[:len(out.output_token_ids)], f"aborted {rid} diverged"
        else:
            assert out.output_token_ids == expected, f"request {rid} diverged"
            assert out.finish_reason in ("length", "stop")
    assert_clean(engine)


# --- bad input --------------------------------------------------------------------------

def test_empty_prompt_is_rejected():
    engine = LLMEngine(num_blocks=64, max_model_len=128)
    with pytest.raises(ValueError, match="empty"):
        engine.add_request("", GREEDY)
    with pytest.raises(ValueError, match="empty"):
        engine.add_request([], GREEDY)


def test_a_prompt_of_max_model_len_tokens_is_refused_as_upstream_refuses_it():
    engine = LLMEngine(block_size=4, num_blocks=64, max_model_len=16)
    for n in (16, 17):
        with pytest.raises(ValueError, match=f"length {n}.*max_model_len=16"):
            engine.add_request([5] * n, GREEDY)
    assert_clean(engine)
    (out,) = engine.generate([[5] * 15], SamplingParams(temperature=0.0, max_tokens=100))
    assert len(out.output_token_ids) == 1 and out.finish_reason == "length"


def test_a_max_length_prompt_never_stalls_a_chunked_engine():
    # Issue reproduction: a prompt exactly max_model_len long, chunked 8 tokens a step,
    # used to stall the engine for good ("scheduler made no progress").
    llm = LLM(block_size=4, num_blocks=64, max_model_len=16, max_num_batched_tokens=8)
    with pytest.raises(ValueError, match="max_model_len"):
        llm.generate([[5] * 16])
    assert llm.generate([[5] * 15])[0].finish_reason == "length"
    assert_clean(llm.llm_engine)


def test_a_failed_batch_admission_leaves_nothing_behind():
    llm = LLM()
    # Issue reproduction: seed=-1 used to fail inside numpy after the request was half
    # admitted. Negative seeds are seeds (as torch's manual_seed takes them), and admission
    # is all-or-nothing whatever fails.
    first = llm.generate(["hi"], SamplingParams(seed=-1, max_tokens=4))[0]
    assert first.output_token_ids == llm.generate(["hi"], SamplingParams(seed=2**64 - 1, max_tokens=4))[0].output_token_ids
    with pytest.raises(ValueError, match="empty"):
        llm.generate(["good", ""], GREEDY)
    with pytest.raises(ValueError, match=r"\[0, 257\)"):
        llm.generate(["good", [1, 999]], GREEDY)
    (out,) = llm.generate(["next"], GREEDY)
    assert out.prompt == "next" and not llm.llm_engine.has_unfinished_requests()
    assert "good" not in [o.prompt for o in llm.llm_engine.finished_outputs.values()]
    assert_clean(llm.llm_engine)


def test_non_finite_logits_end_the_request_with_an_error_not_garbage():
    engine = LLMEngine(block_size=4, num_blocks=64, max_model_len=64)
    engine.engine_core.model.lm_head[:, 3] = float("nan")
    (out,) = engine.generate(["hello"], GREEDY)
    assert out.finish_reason == "error" and out.status == RequestStatus.FINISHED_ERROR
    assert "NaN" in out.stop_reason and out.output_token_ids == []
    assert_clean(engine)


def test_history_is_bounded_and_idle_steps_record_nothing():
    engine = LLMEngine(model="toy", block_size=4, num_blocks=64, max_model_len=64, history_size=8)
    for _ in range(5):
        engine.step()
    assert len(engine.step_stats) == 0, "an idle step records no stats"
    for i in range(20):
        engine.generate([f"p{i}"], SamplingParams(temperature=0.0, max_tokens=2))
    assert len(engine.finished_outputs) == 8 and len(engine.step_stats) == 8
    assert list(engine.finished_outputs) == [str(i) for i in range(12, 20)]


def test_generation_stops_at_max_model_len():
    engine, outs = run(["abcdefghijkl"], SamplingParams(temperature=0.0, max_tokens=100), block_size=4,
                       num_blocks=8, max_model_len=16)
    assert len(outs[0].output_token_ids) == 4 and outs[0].finish_reason == "length"


def test_cache_too_small_for_one_request_fails_at_construction():
    with pytest.raises(ValueError, match="KV cache too small"):
        LLMEngine(block_size=16, num_blocks=32, max_model_len=512)
    LLMEngine(block_size=16, num_blocks=33, max_model_len=512)  # 32 usable blocks: fits exactly


def test_invalid_sampling_params_raise_naming_the_field():
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1.0)
    with pytest.raises(TypeError):
        LLMEngine(num_blocks=64, max_model_len=128).add_request("hi", {"temperature": 0})


def test_out_of_vocab_token_ids_and_duplicate_ids_are_rejected():
    engine = LLMEngine(num_blocks=64, max_model_len=128)
    with pytest.raises(ValueError, match="token ids"):
        engine.add_request([1, 999], GREEDY)
    engine.add_request("hi", GREEDY, request_id="a")
    with pytest.raises(ValueError, match="duplicate"):
        engine.add_request("hi", GREEDY, request_id="a")


def test_abort_live_finished_and_unknown_requests():
    engine = LLMEngine(block_size=4, num_blocks=64, max_model_len=128)
    engine.add_request("hello there", GREEDY, request_id="live")
    engine.add_request("x", SamplingParams(temperature=0.0, max_tokens=1), request_id="quick")
    finished = engine.step()
    assert [o.request_id for o in finished] == ["quick"]
    assert engine.abort_request("live") is True
    assert engine.abort_request("quick") is False, "aborting a finished request is a no-op"
    with pytest.raises(KeyError, match="unknown request id"):
        engine.abort_request("never-added")
    (aborted,) = engine.step()
    assert (aborted.request_id, aborted.finish_reason) == ("live", "abort")
    assert_clean(engine)


def test_stop_token_ends_the_request_and_is_recorded():
    engine, (free_run,) = run(["stop here"], GREEDY, num_blocks=64, max_model_len=128)
    stop_at = free_run.output_token_ids[2]
    params = SamplingParams(temperature=0.0, max_tokens=8, stop_token_ids=[stop_at])
    _, (stopped,) = run(["stop here"], params, num_blocks=64, max_model_len=128)
    first = free_run.output_token_ids.index(stop_at)
    assert stopped.output_token_ids == free_run.output_token_ids[: first + 1]
    assert (stopped.finish_reason, stopped.stop_reason) == ("stop", stop_at)


# --- API shape ----------------------------------------------------------------------------

def test_llm_generate_keeps_input_order_and_upstream_output_shape():
    outs = LLM(block_size=4, num_blocks=64, max_model_len=128, max_num_batched_tokens=6).generate(
        ["a long prompt that finishes later", "b"], SamplingParams(temperature=0.0, max_tokens=3))
    assert [o.prompt for o in outs] == ["a long prompt that finishes later", "b"]
    assert outs[1].outputs[0].token_ids == outs[1].output_token_ids
    assert outs[1].outputs[0].text == outs[1].text and outs[1].outputs[0].finish_reason == "length"


def test_step_stats_describe_each_step():
    engine = LLMEngine(block_size=4, num_blocks=16, max_model_len=32, max_num_batched_tokens=8)
    engine.generate(["hello world", "goodbye"], SamplingParams(temperature=0.0, max_tokens=4))
    first = engine.step_stats[0]
    assert first.num_scheduled_tokens == {"0": 8} and (first.num_running, first.num_waiting) == (1, 1)
    assert first.num_free_blocks == 13 and first.usage == pytest.approx(2 / 15)
    assert engine.step_stats[-1].finished_req_ids == ["1"]


def test_engine_core_takes_requests_directly():
    core = EngineCore(EngineConfig.create(block_size=4, num_blocks=16, max_model_len=32))
    core.add_request(Request("r", [1, 2, 3], GREEDY))
    results = [core.step() for _ in range(8)]
    assert results[0].sampled and results[-1].finished[0].request_id == "r"
    assert results[0].scheduler_output.num_scheduled_tokens == {"r": 3}
