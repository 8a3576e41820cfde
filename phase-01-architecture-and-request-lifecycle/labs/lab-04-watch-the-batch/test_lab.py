"""Lab 01-04 spec: continuous batching, observed step by step."""
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm import LLMEngine, SamplingParams

A, B = "hello world", "goodbye"  # 11 and 7 tokens


def named(ids, trace):
    names = dict(zip(ids, "ABCDEFGH"))
    return [{names[r]: n for r, n in step.items()} for step in trace]


def test_ample_budget_prefills_everyone_in_step_one(lab):
    ids, trace = lab.trace_batches([A, B], max_tokens=4)
    assert named(ids, trace) == [{"A": 11, "B": 7}] + [{"A": 1, "B": 1}] * 3, (
        "with budget to spare both prompts are admitted at once; queueing needs scarcity"
    )


def test_tight_budget_chunks_and_defers(lab):
    ids, trace = lab.trace_batches([A, B], max_tokens=4, max_num_batched_tokens=8)
    assert named(ids, trace) == [
        {"A": 8},
        {"A": 3, "B": 5},
        {"A": 1, "B": 2},
        {"A": 1, "B": 1},
        {"A": 1, "B": 1},
        {"B": 1},
    ], "step 1: A chunked to the budget, B waits; step 2: A's tail and B's head share the budget"


def test_token_conservation_per_request(lab):
    ids, trace = lab.trace_batches([A, B], max_tokens=4, max_num_batched_tokens=8)
    totals = {rid: sum(step.get(rid, 0) for step in trace) for rid in ids}
    assert totals == {ids[0]: 11 + 4 - 1, ids[1]: 7 + 4 - 1}, "prompt + max_tokens - 1: the last token is never computed"


@settings(max_examples=15, deadline=None, derandomize=True)
@given(budget=st.integers(1, 24), max_tokens=st.integers(1, 5))
def test_budget_is_never_exceeded(lab, budget, max_tokens):
    _, trace = lab.trace_batches([A, B, "abc"], max_tokens=max_tokens, max_num_batched_tokens=budget)
    assert all(sum(step.values()) <= budget for step in trace), "a step never schedules more than the budget"


def test_probe_keeps_copies_not_the_live_dict(lab):
    _, trace = lab.trace_batches([A, B], max_tokens=4, max_num_batched_tokens=8)
    assert len({id(step) for step in trace}) == len(trace), "each step needs its own dict: copy num_scheduled_tokens"


def test_probe_does_not_change_the_engine(lab):
    params = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)
    plain = LLMEngine(max_num_batched_tokens=8).generate([A, B], params)
    probed = LLMEngine(max_num_batched_tokens=8)
    trace = []
    lab.install_probe(probed, trace)
    outs = probed.generate([A, B], params)
    assert [o.output_token_ids for o in outs] == [o.output_token_ids for o in plain]
    assert len(trace) == 6, "one entry per step"


def test_mixed_batches_exist_under_load(lab):
    ids, trace = lab.trace_batches([A, B], max_tokens=4, max_num_batched_tokens=8)
    labels = lab.label_steps(trace, {ids[0]: 11, ids[1]: 7})
    assert labels == ["prefill", "prefill", "mixed", "decode", "decode", "decode"], (
        "step 3 holds A's first decode and B's last prefill chunk"
    )


def test_label_steps_by_hand(lab):
    trace = [{"x": 4}, {"x": 2, "y": 3}, {}, {"x": 1, "y": 1}]
    assert lab.label_steps(trace, {"x": 6, "y": 3}) == ["prefill", "prefill", "idle", "decode"]


def test_probe_records_copies_of_the_schedulers_dicts(lab):
    engine = LLMEngine(max_num_batched_tokens=8)
    outputs = []
    original = engine.scheduler.schedule

    def keep_outputs():
        out = original()
        outputs.append(out)
        return out

    engine.scheduler.schedule = keep_outputs
    trace = []
    lab.install_probe(engine, trace)
    engine.generate([A, B], SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True))
    assert [dict(o.num_scheduled_tokens) for o in outputs] == trace, "README task 1: one entry per step, equal to the plan"
    assert all(t is not o.num_scheduled_tokens for t, o in zip(trace, outputs)), (
        "README task 1: record a copy of num_scheduled_tokens, not the scheduler's own dict"
    )


def test_label_steps_boundaries(lab):
    assert lab.label_steps([{"x": 3}, {"x": 1}], {"x": 3}) == ["prefill", "decode"], (
        "README task 3: after exactly its prompt (3 of 3) the next chunk is a decode"
    )
    assert lab.label_steps([{"x": 2}, {"x": 1}, {"x": 1}], {"x": 3}) == ["prefill", "prefill", "decode"], (
        "the chunk that finishes the prompt is still prefill: classify before adding this step's tokens"
    )
    assert lab.label_steps([{"x": 3, "y": 2}, {"x": 1, "y": 1}], {"x": 3, "y": 5}) == ["prefill", "mixed"]
    assert lab.label_steps([], {}) == [] and lab.label_steps([{}], {}) == ["idle"]


def test_trace_with_three_prompts_under_a_budget(lab):
    ids, trace = lab.trace_batches(["abcdef", "gh", "ijklm"], max_tokens=2, max_num_batched_tokens=6)
    assert named(ids, trace) == [{"A": 6}, {"A": 1, "B": 2, "C": 3}, {"B": 1, "C": 2}, {"C": 1}], (
        "README task 2: prompts of 6, 2 and 5 tokens, 2 output tokens each, at most 6 tokens per step"
    )
