"""Lab 01-03 spec: your engine_step is EngineCore.step, token for token and step for step."""
import numpy as np

from mini_vllm import EngineConfig, EngineCore, Request, SamplingParams

GREEDY = SamplingParams(temperature=0.0, max_tokens=6, ignore_eos=True)


def twin_cores(prompts, params, **config):
    """Two identical toy-model engines holding identical requests."""
    cores = []
    for _ in range(2):
        core = EngineCore(EngineConfig.create(model="toy", **config))
        for i, (prompt, p) in enumerate(zip(prompts, params)):
            core.add_request(Request(f"r{i}", list(prompt.encode()), p, eos_token_id=256))
        cores.append(core)
    return cores


def run_both(lab, prompts, params, max_steps=200, **config):
    """Step the reference with EngineCore.step and the twin with engine_step; compare each step."""
    ref, mine = twin_cores(prompts, params, **config)
    steps = 0
    while ref.has_unfinished_requests():
        expected = ref.step()
        sampled, finished = lab.engine_step(mine.scheduler, mine.model, mine.sampler, mine.generators)
        assert sampled == expected.sampled, f"step {steps}: sampled {sampled}, engine sampled {expected.sampled}"
        assert [r.request_id for r in finished] == [r.request_id for r in expected.finished], f"step {steps}: finished"
        steps += 1
        assert steps < max_steps
    assert not mine.scheduler.has_unfinished_requests(), "your engine still has work when the reference is done"
    return steps, ref, mine


def test_rows_to_sample_skips_a_mid_prefill_chunk(lab):
    (core, _) = twin_cores(["abcdefghij", "xy"], [GREEDY, GREEDY], long_prefill_token_threshold=4)
    out = core.scheduler.schedule()
    assert out.num_scheduled_tokens == {"r0": 4, "r1": 2}
    assert [r.request_id for r in lab.rows_to_sample(out)] == ["r1"], "r0 computed 4 of 10 prompt tokens: no token yet"


def test_execute_model_uses_last_token_and_position(lab):
    (core, _) = twin_cores(["hello", "hi"], [GREEDY, GREEDY])
    out = core.scheduler.schedule()
    rows = lab.rows_to_sample(out)
    logits = lab.execute_model(core.model, rows)
    expected = np.stack([core.model.forward_dense([tok], pos, []) for tok, pos in ((ord("o"), 4), (ord("i"), 1))])
    assert logits.shape == (2, 257)
    np.testing.assert_allclose(logits, expected, rtol=1e-12, err_msg="row i: last token of rows[i] at position num_tokens-1")


def test_single_request_matches_reference(lab):
    steps, ref, mine = run_both(lab, ["hello"], [GREEDY])
    assert steps == 6, "1 prefill step + 5 decode steps for max_tokens=6"


def test_batch_matches_reference(lab):
    params = [SamplingParams(temperature=0.8, seed=7, max_tokens=5),
              SamplingParams(temperature=1.2, max_tokens=7),
              SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)]
    run_both(lab, ["the cat", "sat on", "a mat!"], params)


def test_matches_under_chunked_prefill(lab):
    params = [SamplingParams(temperature=0.9, max_tokens=5)] * 3
    steps, _, _ = run_both(lab, ["a long prompt that needs chunks", "short", "medium prompt"], params,
                           max_num_batched_tokens=8)
    assert steps > 8, "a budget of 8 must spread the prefills over several steps"


def test_mid_prefill_chunk_emits_no_token(lab):
    (_, core) = twin_cores(["abcdefghij"], [GREEDY], long_prefill_token_threshold=4)
    request = core.scheduler.requests["r0"]
    sampled, finished = lab.engine_step(core.scheduler, core.model, core.sampler, core.generators)
    assert (sampled, finished) == ({}, []), "4 of 10 prompt tokens computed: nothing to sample yet"
    assert (request.num_computed_tokens, request.num_tokens) == (4, 10), "the chunk still counts as computed"
    lab.engine_step(core.scheduler, core.model, core.sampler, core.generators)
    sampled, _ = lab.engine_step(core.scheduler, core.model, core.sampler, core.generators)
    assert list(sampled) == ["r0"] and request.num_tokens == 11, "the step that reaches 10/10 samples token 1"


def test_empty_schedule_returns_no_finished(lab):
    core = EngineCore(EngineConfig.create(model="toy"))
    assert lab.engine_step(core.scheduler, core.model, core.sampler, core.generators) == ({}, [])


def test_finished_requests_release_their_generators(lab):
    _, _, mine = run_both(lab, ["hi", "there"], [GREEDY, SamplingParams(temperature=1.0, max_tokens=3)])
    assert mine.generators == {}, "a finished request's RNG is dropped, as the engine does"


def test_matches_after_preemption_and_recompute(lab):
    """Five blocks of 4 slots for three requests: some are preempted and recompute prompt
    plus output in chunks. A recompute chunk that covers the prompt but not the outputs
    must not sample."""
    params = [SamplingParams(temperature=0.0, max_tokens=9, ignore_eos=True)] * 3
    config = dict(block_size=4, num_blocks=5, max_num_batched_tokens=6, long_prefill_token_threshold=0,
                  max_model_len=16)
    _, ref, _ = run_both(lab, ["abcdef", "ghijkl", "mnopqr"], params, **config)
    replay, _ = twin_cores(["abcdef", "ghijkl", "mnopqr"], params, **config)
    preempted = 0
    while replay.has_unfinished_requests():
        preempted += replay.step().stats.num_preempted
    assert preempted > 0, "this configuration must preempt, or the test proves nothing"


def test_rows_to_sample_compares_with_all_tokens_not_the_prompt(lab):
    (core, _) = twin_cores(["abcdef"], [GREEDY])
    request = core.scheduler.requests["r0"]
    out = core.scheduler.schedule()
    assert [r.request_id for r in lab.rows_to_sample(out)] == ["r0"], "README task 1: 6 of 6 prompt tokens: it samples"
    core.scheduler.update_from_output(out, {"r0": 120})
    out = core.scheduler.schedule()
    assert out.num_scheduled_tokens == {"r0": 1} and request.num_tokens == 7
    assert [r.request_id for r in lab.rows_to_sample(out)] == ["r0"], (
        "README task 1: a decode step computes token 7 of 7 (6 computed + 1 scheduled == num_tokens): it samples"
    )
