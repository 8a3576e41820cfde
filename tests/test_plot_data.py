"""The numbers behind the phase figures: each plot script's ``data()`` (not its drawing).

Every value asserted here is one the phase guides quote; a change to a script that moves
a number fails this file until the prose is updated with it.
"""
from __future__ import annotations

import sys
from functools import lru_cache

import numpy as np
import pytest

from course.labkit import REPO_ROOT, load_module_from_path

# Checks of the numbers behind the docs' figures: a maintainer's concern, run by .ci/run (pytest --maintainer),
# not on every learner's `pytest -m "not gpu"`.
pytestmark = pytest.mark.maintainer


PLOTS = REPO_ROOT / "tools" / "plots"
sys.path.insert(0, str(PLOTS))


@lru_cache(maxsize=None)
def plot(name: str):
    return load_module_from_path(PLOTS / f"{name}.py")


@lru_cache(maxsize=None)
def data(name: str) -> dict:
    return plot(name).data()


def test_roofline_ridges_and_decode_fraction():
    d = data("roofline")
    assert d["A100"]["ridge"] == pytest.approx(156.0)
    assert d["H100 SXM"]["ridge"] == pytest.approx(295.2, abs=0.05)
    a100 = d["A100"]["points"]
    assert a100["decode, batch 1"]["fraction_of_peak"] == pytest.approx(0.0064, abs=5e-5)
    assert a100["decode, batch 64"]["tflops"] == pytest.approx(128.0)
    assert a100["prefill, 2,048 tokens"]["fraction_of_peak"] == 1.0


def test_attention_io_score_matrix_and_traffic():
    d = data("attention_io")
    row = {r["n"]: r for r in d["rows"]}[8192]
    assert row["score_bytes_per_head"] == 128 * 2**20
    assert row["score_bytes_per_layer"] == 4 * 2**30
    assert row["row_state_bytes_per_head"] == 64 * 1024
    assert row["naive_bytes"] == 520 * 2**20
    assert row["flash_bytes"] == 260 * 2**20
    assert row["floor_bytes"] == 8 * 2**20
    assert row["ratio_to_floor"] == 65
    assert d["tile_bytes"] == 160 * 1024 and d["tile_fits_smem"]
    assert round(d["hbm_to_smem_capacity"]) == 2596
    # Tiles as wide as the head dimension halve the traffic whatever N is.
    assert all(r["ratio"] == 2 for r in d["rows"])


def test_model_numbers_llama():
    d = data("model_numbers")
    big, small = d["Llama-3-8B"], d["Llama-3.2-1B"]
    assert big["total"] == 8_030_261_248
    assert round(100 * big["mlp_share"], 1) == 70.2
    assert round(100 * big["vocab_share"], 1) == 13.1
    assert big["embedding_row_bytes"] == 8192
    assert round(big["embedding_table_bytes"] / 2**30, 2) == 0.98
    assert round(big["lm_head_flops_per_token"] / 1e9, 2) == 1.05
    assert round(big["logits_bytes_per_token"] / 1024) == 501
    assert small["lm_head"] == 0 and small["embedding"] == 262_668_288
    assert round(100 * small["vocab_share"], 1) == 21.3


def test_fragmentation_reserve_vs_paged():
    d = data("fragmentation")
    assert round(100 * d["reserve_max_waste"], 1) == 73.8
    assert round(100 * d["paged_waste"][16], 2) == 1.28
    assert round(100 * d["paged_waste"][256], 2) == 18.86
    assert d["paged_waste"][1] == 0.0
    waste = list(d["paged_waste"].values())
    assert waste == sorted(waste), "bigger blocks can only waste more of the last block"
    assert (d["admitted_64k_reserve"], d["admitted_64k_paged16"]) == (32, 116)


def test_prefix_hit_rate_staircase_and_values():
    m = plot("prefix_hit_rate")
    d = data("prefix_hit_rate")
    assert round(100 * d["curves"][8][1024], 1) == 82.4
    assert round(100 * d["curves"][32][2048], 1) == 93.9
    # A shared prefix shorter than one block is never a hit.
    assert d["steps_block16"][15] == 0.0 and d["steps_block16"][16] > 0
    assert {b: round(100 * v, 2) for b, v in d["block_size_effect"].items()} == {16: 90.32, 64: 87.41, 256: 69.92}
    # A prompt seen twice hits all but its last (partial or full) block's worth.
    cache: set = set()
    prompt = list(range(48))
    assert m.cached_tokens(prompt, cache, 16) == 0
    assert m.cached_tokens(prompt, cache, 16) == 32


def test_decode_gaps_reproduce_lab05_and_the_sweep():
    d = data("decode_gaps")
    assert d["lab05_th0"] == [257] + [2] * 14
    assert d["lab05_th32"] == [33] * 8 + [2] * 7
    assert d["worst"] == {0: 2049, 64: 65, 256: 257, 512: 513}


def test_capture_padding_ladder_and_triton_threshold():
    d = data("capture_padding")
    assert d["top"] == 512 and d["num_sizes"] == 51
    assert (d["worst_n"], d["padded"][d["worst_n"]]) == (9, 16)
    assert round(100 * d["mean_waste"], 2) == 3.28
    assert d["padded"][257] == 272
    assert d["triton_threshold"][8] == (16, 16)
    assert d["triton_threshold"][3] == (42, 40)
    assert d["triton_threshold"][5] == (25, 24)


def test_grouped_topk_stays_inside_the_chosen_groups():
    m = plot("expert_load")
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((64, 256))
    w, ids = m.grouped_topk(logits, 8, True, 8, 4, "sigmoid", 2.5, np.zeros(256))
    assert np.allclose(w.sum(axis=1), 2.5, atol=1e-5)
    groups = ids // 32
    assert max(len(set(g)) for g in groups) <= 4
    assert all(len(set(row)) == 8 for row in ids)
    # Without the group limit (every group allowed) it is plain top-k on the scores.
    _, all_ids = m.grouped_topk(logits, 8, True, 8, 8, "sigmoid", 1.0, np.zeros(256))
    assert np.array_equal(all_ids, m.plain_topk(logits, 8))


def test_expert_load_and_all_to_all_numbers():
    d = data("expert_load")
    assert d["experts_considered"] == 128
    assert d["grouped"]["max_remote_ranks"] == 4 and d["flat"]["max_remote_ranks"] == 7
    assert round(d["grouped"]["mean_remote_ranks"], 2) == 3.47
    assert round(d["flat"]["mean_remote_ranks"], 2) == 4.64
    assert d["bytes_per_copy"] == 14336
    assert round(d["dispatch_ms"]["grouped@ib50"], 2) == 4.08
    assert round(d["dispatch_ms"]["flat@ib50"], 2) == 5.45
    assert round(d["dispatch_ms"]["grouped@nvlink450"], 3) == 0.453
    assert round(d["grouped"]["rank_max_over_mean"], 2) == 1.20
    assert d["expert_params"] == 44_040_192


def test_allocate_slots_regions_examples():
    d = data("kv_regions")
    assert d["admission"] == {"need_slot": 60, "blocks_after": 4, "hit_blocks": 2, "fresh_blocks": 2,
                              "tokens_to_cache": 60, "full_blocks_cached": 3}
    assert d["spec_decode"] == {"need_slot": 67, "blocks_after": 5, "hit_blocks": 0, "fresh_blocks": 1,
                                "tokens_to_cache": 61, "full_blocks_cached": 3}
