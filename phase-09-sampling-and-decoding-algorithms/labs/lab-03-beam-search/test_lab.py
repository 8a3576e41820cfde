"""Lab 09-03 spec: the pinned score, greedy's garden path, beam search checked exactly
against brute-force enumeration on tiny vocabularies, the EOS bookkeeping, and agreement
with mini_vllm's API-layer beam search on the tiny engine."""

import itertools
import math

import numpy as np
import pytest

from mini_vllm import LLM
from mini_vllm.beam_search import BeamSearchParams, get_beam_search_score


def brute_force(logprob_fn, prompt, max_tokens, eos, length_penalty):
    """Every possible output (ended by EOS, or max_tokens long), scored as beam search
    scores it: a list of (score, output, summed log-prob), best first."""
    out = []
    vocab = len(logprob_fn(list(prompt)))
    for length in range(1, max_tokens + 1):
        for seq in itertools.product(range(vocab), repeat=length):
            if eos in seq[:-1] or (length < max_tokens and seq[-1] != eos):
                continue
            tokens, total = list(prompt), 0.0
            for t in seq:
                total += float(logprob_fn(tokens)[t])
                tokens.append(t)
            if math.isfinite(total):
                s = get_beam_search_score(tokens, total, eos, length_penalty)
                out.append((s, list(seq), total))
    return sorted(out, key=lambda r: r[0], reverse=True)


def random_markov(lab, seed, vocab=4):
    rng = np.random.default_rng(seed)
    table = {last: dict(enumerate(rng.dirichlet(np.ones(vocab)).tolist())) for last in range(vocab)}
    return lab.MarkovLM(table, vocab)


# ---- TODO 1: the score


def test_score_divides_by_the_length_without_a_final_eos(lab):
    assert lab.beam_score([7, 1, 2, 9], -6.0, 9, 1.0) == -2.0, "4 tokens, the last is EOS: seq_len 3"
    assert lab.beam_score([7, 1, 2, 3], -6.0, 9, 1.0) == -1.5
    assert lab.beam_score([7, 1, 2, 3], -6.0, 9, 0.0) == -6.0, "length_penalty 0: the raw sum"
    assert lab.beam_score([7, 1, 2, 3], -8.0, None, 0.5) == -4.0


def test_score_matches_upstreams_formula(lab):
    rng = np.random.default_rng(0)
    for _ in range(50):
        tokens = rng.integers(0, 5, int(rng.integers(1, 6))).tolist()
        lp, alpha = float(rng.uniform(-10, 0)), float(rng.uniform(0, 2))
        assert lab.beam_score(tokens, lp, 4, alpha) == pytest.approx(get_beam_search_score(tokens, lp, 4, alpha))


# ---- TODO 2: greedy


def test_greedy_takes_the_garden_path(lab):
    tokens, total = lab.greedy_decode(lab.GARDEN_PATH, [lab.S], 3, lab.EOS)
    assert tokens == [lab.A, lab.C, lab.EOS], "0.6 beats 0.4 at step 1"
    assert math.exp(total) == pytest.approx(0.6 * 0.51)


def test_greedy_breaks_ties_toward_the_lowest_id(lab):
    m = lab.MarkovLM({0: {1: 0.5, 2: 0.5}, 1: {0: 1.0}, 2: {0: 1.0}}, vocab_size=3)
    assert lab.greedy_decode(m, [0], 2, None)[0] == [1, 0]


def test_greedy_stops_at_max_tokens_without_eos(lab):
    tokens, total = lab.greedy_decode(lab.GARDEN_PATH, [lab.S], 2, lab.EOS)
    assert tokens == [lab.A, lab.C] and math.exp(total) == pytest.approx(0.306)


# ---- TODO 3: beam search


def test_beam_escapes_the_trap(lab):
    (best, total), _ = lab.beam_search(lab.GARDEN_PATH, [lab.S], 2, 3, lab.EOS, length_penalty=0.0)
    assert best == [lab.B, lab.C, lab.EOS] and math.exp(total) == pytest.approx(0.36), "0.4 x 0.9 > 0.6 x 0.51"


def test_beam_width_one_is_greedy(lab):
    for seed in range(20):
        m = random_markov(lab, seed)
        (tokens, total), = lab.beam_search(m, [0], 1, 4, None, length_penalty=0.0)
        g_tokens, g_total = lab.greedy_decode(m, [0], 4, None)
        assert (tokens, total) == (g_tokens, pytest.approx(g_total, abs=1e-12)), f"seed {seed}"


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_beam_as_wide_as_the_search_space_is_exact(lab, seed, length_penalty):
    """Vocabulary 4 (token 3 is EOS), 3 steps: at most 1 + 3 + 9 + 27 = 40 outputs, so
    width 64 prunes nothing: the same hypotheses as brute-force enumeration, ranked by the
    same scores. (A Markov chain makes reordered paths exact ties, so the order among
    equal scores is left free.)"""
    m = random_markov(lab, seed)
    oracle = brute_force(m, [0], 3, 3, length_penalty)
    got = lab.beam_search(m, [0], 64, 3, 3, length_penalty)
    assert sorted(tuple(t) for t, _ in got) == sorted(tuple(o[1]) for o in oracle)
    scores = [lab.beam_score([0] + t, s, 3, length_penalty) for t, s in got]
    assert scores == pytest.approx([o[0] for o in oracle], abs=1e-12)
    assert dict((tuple(t), s) for t, s in got) == pytest.approx({tuple(o[1]): o[2] for o in oracle}, abs=1e-12)


def test_an_eos_beam_is_finished_not_extended(lab):
    m = lab.MarkovLM({0: {1: 0.5, 2: 0.5}, 1: {1: 0.5, 2: 0.5}, 2: {1: 0.5, 2: 0.5}}, vocab_size=3)
    results = lab.beam_search(m, [0], 2, 3, eos_token_id=2, length_penalty=0.0)
    assert results == [([2], pytest.approx(math.log(0.5))), ([1, 2], pytest.approx(2 * math.log(0.5)))], (
        "the EOS beam stops at its natural length and wins on probability")


def test_length_penalty_can_flip_the_winner(lab):
    """Prompt [0]; EOS right away has probability 0.5, the longest path 0.5 x 0.9 x 0.9.
    Raw sums favour the short answer; dividing by length favours the long one."""
    m = lab.MarkovLM({0: {3: 0.5, 1: 0.5}, 1: {2: 0.9, 3: 0.1}, 2: {2: 0.9, 3: 0.1}}, vocab_size=4)
    assert lab.beam_search(m, [0], 2, 3, 3, length_penalty=0.0)[0][0] == [3]
    assert lab.beam_search(m, [0], 2, 3, 3, length_penalty=1.0)[0][0] == [1, 2, 2]


def test_the_prompt_length_enters_the_score(lab):
    """Same model, two prompts. EOS at once scores log 0.5 / len(prompt); the path
    [1, 2, 2] scores log 0.18 / (len(prompt) + 3). With a 4-token prompt the short answer
    wins (-0.173 vs -0.245); with a 1-token prompt the long one does (-0.693 vs -0.429)."""
    m = lab.MarkovLM({0: {3: 0.5, 1: 0.5}, 1: {2: 0.6, 3: 0.4}, 2: {2: 0.6, 3: 0.4}}, vocab_size=4)
    assert lab.beam_search(m, [0, 0, 0, 0], 2, 3, 3, length_penalty=1.0)[0][0] == [3]
    assert lab.beam_search(m, [0], 2, 3, 3, length_penalty=1.0)[0][0] == [1, 2, 2]


def test_a_wider_beam_can_score_worse(lab):
    """The course description says wider never scores worse. False: here width 2 keeps
    [0, 1] (0.216) and [0, 0] (0.2025) at step 2 and prunes greedy's [1, 2] (0.2016),
    whose one continuation (x 0.7) would have won."""
    m = lab.MarkovLM({0: {0: 0.45, 1: 0.48, 2: 0.07}, 1: {0: 0.35, 1: 0.23, 2: 0.42},
                      2: {0: 0.14, 1: 0.7, 2: 0.16}}, vocab_size=3)
    (w1, p1), = lab.beam_search(m, [0], 1, 3, None, 0.0)
    (w2, p2), _ = lab.beam_search(m, [0], 2, 3, None, 0.0)
    assert (w1, w2) == ([1, 2, 1], [0, 0, 1])
    assert math.exp(p1) == pytest.approx(0.48 * 0.42 * 0.7) and math.exp(p2) == pytest.approx(0.45 * 0.45 * 0.48)
    assert p2 < p1


def test_beam_search_returns_at_most_beam_width_and_best_first(lab):
    m = random_markov(lab, 3)
    got = lab.beam_search(m, [0], 3, 4, 3, 1.0)
    scores = [lab.beam_score([0] + t, s, 3, 1.0) for t, s in got]
    assert len(got) == 3 and scores == sorted(scores, reverse=True)


def test_your_beam_search_matches_mini_vllms_on_the_tiny_engine(lab):
    llm = LLM(block_size=16)
    model = llm.llm_engine.engine_core.model

    def logprob_fn(tokens):
        x = model.forward_dense(tokens, 0, model.empty_kv_state())
        return x - np.logaddexp.reduce(x)

    prompt = [72, 101, 108, 108, 111]
    (engine,) = llm.beam_search([prompt], BeamSearchParams(beam_width=3, max_tokens=3))
    mine = lab.beam_search(logprob_fn, prompt, 3, 3, eos_token_id=256, length_penalty=1.0)
    assert [t for t, _ in mine] == [b.output_token_ids for b in engine.sequences]
    assert [s for _, s in mine] == pytest.approx([b.cum_logprob for b in engine.sequences], abs=1e-9)
