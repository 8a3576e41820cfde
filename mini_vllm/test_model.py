"""TinyTransformer really uses the paged cache: the right tables reproduce the dense
model exactly, and every kind of KV bookkeeping mistake changes the logits."""

import numpy as np
import pytest

from mini_vllm.model import ModelConfig, TinyTransformer, ToyModel, reference_generate
from mini_vllm.sampler import SamplingParams

BS = 4
MODEL = TinyTransformer()


def slots(table, start, n):
    pos = np.arange(start, start + n)
    return np.asarray(table)[pos // BS] * BS + pos % BS


def paged(model, caches, token_ids, start, table):
    """Run one request's tokens at positions start.. through the paged path."""
    n = len(token_ids)
    return model.forward(token_ids, np.arange(start, start + n), slots(table, start, n), [table], [0, n],
                         [start + n], caches)[0]


def dense(model, token_ids):
    return model.forward_dense(token_ids, 0, model.empty_kv_state())


PROMPT = [72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108]  # "Hello, worl"
TABLE = [5, 2, 7]  # deliberately scattered physical blocks


def prefilled(table=TABLE, prompt=PROMPT):
    caches = MODEL.make_kv_caches(num_blocks=8, block_size=BS)
    paged(MODEL, caches, prompt, 0, table)
    return caches


def test_kv_caches_have_the_paged_layout():
    caches = MODEL.make_kv_caches(num_blocks=8, block_size=BS)
    assert len(caches) == 2 and caches[0].shape == (2, 8, BS, 2, 8)


def test_paged_prefill_and_decode_match_the_dense_model():
    caches = MODEL.make_kv_caches(num_blocks=8, block_size=BS)
    np.testing.assert_allclose(paged(MODEL, caches, PROMPT, 0, TABLE), dense(MODEL, PROMPT), atol=1e-12)
    np.testing.assert_allclose(paged(MODEL, caches, [100], 11, TABLE), dense(MODEL, PROMPT + [100]), atol=1e-12)


def test_chunked_prefill_matches_one_shot_prefill():
    caches = MODEL.make_kv_caches(num_blocks=8, block_size=BS)
    for start in range(0, 9, 3):
        last = paged(MODEL, caches, PROMPT[start : start + 3], start, TABLE)
    np.testing.assert_allclose(paged(MODEL, caches, PROMPT[9:], 9, TABLE), dense(MODEL, PROMPT), atol=1e-12)
    assert last.shape == (257,)


def test_batched_requests_do_not_interfere():
    caches = MODEL.make_kv_caches(num_blocks=8, block_size=BS)
    a, b = PROMPT[:6], [1, 2, 3, 4, 5]
    ta, tb = [3, 6], [1, 4]
    logits = MODEL.forward(a + b, list(range(6)) + list(range(5)),
                           np.concatenate([slots(ta, 0, 6), slots(tb, 0, 5)]), [ta, tb], [0, 6, 11], [6, 5], caches)
    np.testing.assert_allclose(logits, [dense(MODEL, a), dense(MODEL, b)], atol=1e-12)


def differs(x, y):
    return np.abs(np.asarray(x) - np.asarray(y)).max() > 1e-3


def test_wrong_block_table_changes_the_logits():
    right = paged(MODEL, prefilled(), [100], 11, TABLE)
    wrong = paged(MODEL, prefilled(), [100], 11, [5, 6, 7])  # block 6 instead of 2
    assert differs(right, wrong), "reading a block the request does not own must be visible"


def test_a_decode_query_cannot_see_the_order_of_full_blocks():
    # K already carries its position (RoPE is applied before the write) and a decode
    # query attends to every key, so permuting whole blocks of the context is invisible
    # to it; a prefill chunk, with its causal mask, would notice.
    right = paged(MODEL, prefilled(), [100], 11, TABLE)
    swapped = paged(MODEL, prefilled(), [100], 11, [2, 5, 7])
    np.testing.assert_allclose(right, swapped, atol=1e-12)


def test_wrong_slot_mapping_changes_the_logits():
    caches = MODEL.make_kv_caches(num_blocks=8, block_size=BS)
    bad = slots(TABLE, 0, len(PROMPT))
    bad[[1, 2]] = bad[[2, 1]]
    MODEL.forward(PROMPT, np.arange(11), bad, [TABLE], [0, 11], [11], caches)
    assert differs(paged(MODEL, caches, [100], 11, TABLE), paged(MODEL, prefilled(), [100], 11, TABLE))


def test_freed_then_reused_block_changes_the_logits():
    caches = prefilled()
    # Block 2 (positions 4..7 of the request) is handed to another request too early,
    # which overwrites it with its own K/V.
    paged(MODEL, caches, [9, 9, 9, 9], 0, [2])
    assert differs(paged(MODEL, caches, [100], 11, TABLE), paged(MODEL, prefilled(), [100], 11, TABLE))


def test_bad_prefix_cache_hit_changes_the_logits():
    # Two prompts share block 1's *tokens* but not block 0. A hash without the parent
    # would hand the second request the first one's block 1, whose K/V were computed
    # after a different prefix.
    first, second = [1, 2, 3, 4, 50, 51, 52, 53], [9, 9, 9, 9, 50, 51, 52, 53]
    caches = prefilled(table=[1, 2], prompt=first)
    paged(MODEL, caches, second[:4], 0, [3])
    reused = paged(MODEL, caches, [100], 8, [3, 2, 4])
    correct = dense(MODEL, second + [100])
    assert differs(reused, correct)


def test_toy_model_sees_only_the_last_token_and_position():
    toy = ToyModel()

    def last_token_logits(tokens, positions):
        # Three one-token requests, through the same forward contract as TinyTransformer.
        n = len(tokens)
        return toy.forward(np.array(tokens), np.array(positions), np.zeros(n, dtype=np.int64),
                           [[0]] * n, np.arange(n + 1), np.array(positions) + 1, toy.make_kv_caches(4, 4))

    out = last_token_logits([5, 5, 6], [3, 3, 3])
    assert out.shape == (3, 257)
    np.testing.assert_array_equal(out[0], out[1])
    assert differs(out[0], out[2])
    np.testing.assert_array_equal(out, last_token_logits([5, 5, 6], [3, 3, 3]))
    # A longer request reads only its last token: same logits as that token alone.
    two = toy.forward(np.array([9, 5]), np.array([2, 3]), np.zeros(2, dtype=np.int64), [[0]],
                      np.array([0, 2]), np.array([4]), [])
    np.testing.assert_allclose(two[0], out[0], rtol=1e-12)


def test_every_model_has_the_same_contract():
    for model in (MODEL, ToyModel()):
        for method in ("make_kv_caches", "forward", "forward_dense", "empty_kv_state"):
            assert callable(getattr(model, method)), f"{type(model).__name__} lacks {method}"
        assert model.config.vocab_size == 257


def test_reference_generate_is_deterministic_and_honours_max_tokens():
    a = reference_generate(MODEL, PROMPT, 5)
    assert len(a) == 5 and a == reference_generate(MODEL, PROMPT, params=SamplingParams(temperature=0.0, max_tokens=5))


def test_weights_depend_only_on_the_seed():
    np.testing.assert_array_equal(TinyTransformer().lm_head, MODEL.lm_head)
    assert differs(TinyTransformer(ModelConfig(seed=1)).lm_head, MODEL.lm_head)


def test_bad_configs_and_inputs_raise():
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        ModelConfig(num_heads=4, num_kv_heads=3)
    caches = MODEL.make_kv_caches(num_blocks=8, block_size=BS)
    with pytest.raises(ValueError, match="query_start_loc"):
        MODEL.forward([1, 2], [0, 1], [4, 5], [[1]], [0, 1], [2], caches)
    with pytest.raises(ValueError, match="token ids"):
        MODEL.forward([1, 999], [0, 1], [4, 5], [[1]], [0, 2], [2], caches)
    with pytest.raises(ValueError, match="too short"):
        MODEL.forward([1, 2], [3, 4], [7, 8], [[1]], [0, 2], [5], caches)
