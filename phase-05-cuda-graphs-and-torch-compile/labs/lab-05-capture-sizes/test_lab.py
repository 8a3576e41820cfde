"""Spec for lab 05-05: the ladder upstream builds by default, the lookup, the padding bill.

Upstream reference values: the ladder formula in the docstring of
vllm/config/vllm.py:1597@0decac0 (VllmConfig._set_cudagraph_sizes) and its code at
vllm/config/vllm.py:1688@0decac0 ("cudagraph_capture_sizes = [").
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course.lab_support.phase_05 import format_ladder_report

LADDER_64 = [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64]


def test_top_is_twice_max_num_seqs_capped_at_512(lab):
    assert lab.max_cudagraph_capture_size(32, 8192) == 64
    assert lab.max_cudagraph_capture_size(64, 16384) == 128
    assert lab.max_cudagraph_capture_size(256, 8192) == 512
    assert lab.max_cudagraph_capture_size(1024, 16384) == 512, "H100 LLM-class defaults still stop at 512"


def test_top_is_capped_by_the_token_budget_and_grows_with_speculation(lab):
    assert lab.max_cudagraph_capture_size(256, 100) == 100
    assert lab.max_cudagraph_capture_size(64, 8192, num_speculative_tokens=1) == 256


def test_ladder_shape_for_a_top_of_64(lab):
    assert lab.default_capture_sizes(64) == LADDER_64, "dense at 1, 2, 4, then every 8"


def test_ladder_for_a_top_of_512_is_upstreams_docstring_formula(lab):
    formula = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, 512 + 1, 16))
    assert lab.default_capture_sizes(512) == formula
    assert len(formula) == 51


def test_ladder_for_a_top_of_128_has_19_rungs(lab):
    sizes = lab.default_capture_sizes(128)
    assert len(sizes) == 19 and sizes[-1] == 128


def test_small_tops_keep_only_the_rungs_that_fit(lab):
    assert lab.default_capture_sizes(3) == [1, 2]
    assert lab.default_capture_sizes(8) == [1, 2, 4, 8]


def test_a_token_budget_under_the_top_becomes_the_top_rung(lab):
    assert lab.default_capture_sizes(100, max_num_batched_tokens=100)[-3:] == [88, 96, 100]
    assert lab.default_capture_sizes(64, max_num_batched_tokens=64) == LADDER_64, "no duplicate rung"
    assert lab.default_capture_sizes(64, max_num_batched_tokens=8192) == LADDER_64


def test_exact_rung_pays_nothing(lab):
    assert lab.select_capture_size(LADDER_64, 40) == 40
    assert lab.padded_tokens(LADDER_64, 40) == 0


def test_batch_of_33_runs_at_40(lab):
    assert lab.select_capture_size(LADDER_64, 33) == 40
    assert lab.padded_tokens(LADDER_64, 33) == 7
    assert lab.padded_tokens(LADDER_64, 33) / 40 == 0.175


def test_relative_padding_is_worst_at_the_bottom_of_the_ladder(lab):
    ladder = lab.default_capture_sizes(512)
    assert lab.padded_tokens(ladder, 3) / 4 == 0.25
    assert round(lab.padded_tokens(ladder, 250) / 256, 3) == 0.023
    assert lab.select_capture_size(ladder, 257) == 272


def test_oversize_batch_runs_eager(lab):
    assert lab.select_capture_size(LADDER_64, 65) is None
    assert lab.padded_tokens(LADDER_64, 65) == 0, "an eager step is not padded"


def test_lookup_table_matches_upstream_layout(lab):
    table = lab.bs_to_padded_graph_size([1, 2, 4, 8])
    assert table == [0, 1, 2, 4, 4, 8, 8, 8, 8]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 512))
def test_lookup_is_the_smallest_rung_that_fits(lab, n):
    ladder = lab.default_capture_sizes(512)
    rung = lab.select_capture_size(ladder, n)
    assert rung in ladder and rung >= n
    assert all(r < n for r in ladder if r < rung)
    assert lab.bs_to_padded_graph_size(ladder)[n] == rung


def test_the_ladder_may_come_in_any_order(lab):
    shuffled = [64, 8, 1, 32, 4, 16, 2]
    assert lab.select_capture_size(shuffled, 9) == 16, "README task 3: 9 tokens pad to 16 whatever order the rungs come in"
    assert lab.select_capture_size(shuffled, 33) == 64
    assert lab.bs_to_padded_graph_size(shuffled)[9] == 16, "README task 3: the table is built from the sorted rungs"
    assert lab.padded_tokens(shuffled, 17) == 15


def test_a_top_off_the_16_grid_ends_at_the_last_rung_below_it(lab):
    sizes = lab.default_capture_sizes(300)
    assert sizes[-3:] == [256, 272, 288], "README task 2: from 256 every 16 up to and not past the top (300)"
    assert lab.default_capture_sizes(272)[-2:] == [256, 272], "README task 2: a top on the grid is itself a rung"


def test_trace_accounting(lab):
    w = lab.trace_waste(LADDER_64, [1, 3, 33, 33, 64, 65])
    assert (w.real_tokens, w.padded_tokens, w.graph_steps, w.eager_steps) == (199, 15, 5, 1)
    assert w.waste_fraction == 15 / 214


def test_a_workload_stuck_at_33_wastes_17_5_percent(lab):
    w = lab.trace_waste(LADDER_64, [33] * 100)
    assert (w.real_tokens, w.padded_tokens) == (3300, 700)
    assert w.waste_fraction == 0.175


def test_finer_ladder_trades_graphs_for_padding(lab):
    ladders = {
        "pow2": [1, 2, 4, 8, 16, 32, 64],
        "default": LADDER_64,
        "every4": [1, 2, 4] + list(range(8, 65, 4)),
        "every1": list(range(1, 65)),
    }
    rows = lab.compare_ladders(ladders, list(range(1, 65)))
    assert [(name, rungs, pad) for name, rungs, pad, _ in rows] == [
        ("pow2", 7, 651), ("default", 11, 203), ("every4", 18, 91), ("every1", 64, 0),
    ]
    shares = [round(share, 3) for *_, share in rows]
    assert shares == [0.238, 0.089, 0.042, 0.0]


REPORT = """\
max_num_seqs=32 -> top 64, ladder [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64]
    1 tokens:   runs at 1, padding 0
    3 tokens:   runs at 4, padding 1
   33 tokens:  runs at 40, padding 7
   40 tokens:  runs at 40, padding 0
   63 tokens:  runs at 64, padding 1
   65 tokens:       eager, padding 0

every step size 1..64 once:
ladder     rungs  padding  share
pow2           7      651  23.8%
default       11      203   8.9%
every4        18       91   4.2%
every1        64        0   0.0%"""


def test_report_matches_the_readme(lab):
    assert format_ladder_report(lab) == REPORT, "README 'What you should see' quotes this output, built from your functions"
