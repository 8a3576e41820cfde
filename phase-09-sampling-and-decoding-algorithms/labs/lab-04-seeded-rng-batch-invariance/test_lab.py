"""Lab 09-04 spec: a request's stream is a pure function of its seed (or of the engine
seed and its id), continues across steps, ignores its neighbours, and matches the
mini_vllm engine token for token. The shared-generator control fails the same scenario."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mini_vllm import LLM
from mini_vllm.model import get_model
from mini_vllm.sampler import SamplingParams, make_generator

UNIFORM = np.zeros(1000)  # every token equally likely: any change in the stream shows
A = ([72, 101, 108, 108, 111], SamplingParams(seed=7, max_tokens=6))


@pytest.fixture(scope="module")
def model():
    return get_model("tiny")


def neighbours(k):
    return {f"n{i}": ([40 + i, 41, 42], SamplingParams(max_tokens=6, temperature=0.5 + i / 4)) for i in range(k)}


# ---- TODO 1: the generator


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_request_generator_is_the_engines_stream(lab, seed):
    params = SamplingParams(seed=seed)
    mine, ref = lab.request_generator(params, 3, "req-9"), make_generator(params, 3, "req-9")
    assert mine.random(5).tolist() == ref.random(5).tolist()


def test_unseeded_streams_differ_by_request_id_and_engine_seed(lab):
    p = SamplingParams()
    first = {(e, r): lab.request_generator(p, e, r).random() for e in (0, 1) for r in ("a", "b")}
    assert len(set(first.values())) == 4


def test_the_stream_survives_a_process_restart(lab, tmp_path):
    code = ("from course.labkit import load_lab; from mini_vllm.sampler import SamplingParams; "
            f"lab = load_lab({str(lab.__file__)!r}); "
            "print(lab.request_generator(SamplingParams(), 0, 'x').random())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": h}).stdout for h in ("1", "2")}
    assert len(runs) == 1, "two processes with different hash salts must agree: do not use hash()"


# ---- TODO 2 and 3: add and sample


def test_same_seed_reproduces_across_sampler_instances(lab, model):
    assert lab.decode(lab.PerRequestSampler(), model, {"A": A}) == lab.decode(lab.PerRequestSampler(), model, {"A": A})


def test_different_seeds_diverge(lab):
    s = lab.PerRequestSampler()
    s.add_request("x", SamplingParams(seed=1))
    s.add_request("y", SamplingParams(seed=2))
    xs = [s.sample("x", UNIFORM, SamplingParams(seed=1)) for _ in range(5)]
    ys = [s.sample("y", UNIFORM, SamplingParams(seed=2)) for _ in range(5)]
    assert xs != ys


def test_the_stream_continues_across_steps(lab):
    s = lab.PerRequestSampler()
    s.add_request("r", SamplingParams(seed=11))
    drawn = [s.sample("r", UNIFORM, SamplingParams(seed=11)) for _ in range(3)]
    assert drawn == [int(u * 1000) for u in np.random.default_rng(11).random(3)], (
        "three draws are the first three numbers of one stream, not the first number three times")


def test_adding_a_live_id_twice_is_refused(lab):
    s = lab.PerRequestSampler()
    s.add_request("r", SamplingParams())
    with pytest.raises(ValueError, match="'r'"):
        s.add_request("r", SamplingParams())


def test_greedy_touches_no_generator(lab):
    s = lab.PerRequestSampler()
    s.add_request("g", SamplingParams(seed=5, temperature=0.0))
    assert s.sample("g", np.array([0.0, 2.0, 1.0]), SamplingParams(seed=5, temperature=0.0)) == 1
    assert s.generators["g"].random() == np.random.default_rng(5).random()


@pytest.mark.parametrize("k", [0, 1, 5])
def test_batch_invariance_with_neighbours_sampling_first(lab, model, k):
    alone = lab.decode(lab.PerRequestSampler(), model, {"A": A})["A"]
    crowd = lab.decode(lab.PerRequestSampler(), model, {**neighbours(k), "A": A})["A"]
    assert crowd == alone == [149, 216, 189, 50, 83, 220]


def test_the_shared_generator_control_breaks_what_yours_keeps(lab, model):
    mine = lab.decode(lab.PerRequestSampler(), model, {**neighbours(5), "A": A})["A"]
    shared_alone = lab.decode(lab.SharedRNGSampler(seed=7), model, {"A": A})["A"]
    shared_crowd = lab.decode(lab.SharedRNGSampler(seed=7), model, {**neighbours(5), "A": A})["A"]
    assert shared_alone == mine, "alone, one generator seeded 7 is the same stream as yours"
    assert shared_crowd != shared_alone, "with neighbours drawing first, the shared stream shifts"


# ---- TODO 4: finish


def test_a_recycled_id_starts_a_fresh_stream(lab):
    s = lab.PerRequestSampler()
    s.add_request("r", SamplingParams(seed=3))
    s.sample("r", UNIFORM, SamplingParams(seed=3))
    s.finish_request("r")
    assert "r" not in s.generators, "a finished request's generator is a leak"
    s.add_request("r", SamplingParams(seed=4))
    assert s.sample("r", UNIFORM, SamplingParams(seed=4)) == int(np.random.default_rng(4).random() * 1000)


# ---- TODO 5: the batch


def test_sample_batch_is_row_by_row_and_order_free(lab):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 50))
    params = [SamplingParams(seed=s, temperature=t) for s, t in [(1, 1.0), (2, 0.0), (3, 0.7), (4, 1.5)]]
    ids = ["a", "b", "c", "d"]

    def fresh():
        s = lab.PerRequestSampler()
        for rid, p in zip(ids, params):
            s.add_request(rid, p)
        return s

    forward = fresh().sample_batch(ids, logits, params)
    s = fresh()
    backward = s.sample_batch(ids[::-1], logits[::-1], params[::-1])[::-1]
    one_by_one = [fresh().sample(rid, row, p) for rid, row, p in zip(ids, logits, params)]
    assert forward == backward == one_by_one


def test_sample_batch_checks_its_shapes(lab):
    s = lab.PerRequestSampler()
    s.add_request("a", SamplingParams())
    with pytest.raises(ValueError, match="rows"):
        s.sample_batch(["a"], np.zeros((2, 5)), [SamplingParams()])


# ---- the engine keeps the same contract


def test_your_sampler_reproduces_the_engine_token_for_token(lab, model):
    """A fresh LLM names its requests "0", "1", ... and seeds unseeded ones from
    (engine seed 0, id): your decode loop with the same ids must give the same tokens."""
    reqs = {"0": ([72, 101, 108, 108, 111], SamplingParams(max_tokens=5, ignore_eos=True)),
            "1": ([1, 2, 3], SamplingParams(max_tokens=5, seed=9, top_k=20, ignore_eos=True))}
    engine = [o.output_token_ids for o in LLM().generate([p for p, _ in reqs.values()], [q for _, q in reqs.values()])]
    assert list(lab.decode(lab.PerRequestSampler(0), model, reqs).values()) == engine
