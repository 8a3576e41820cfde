"""Spec for lab 05-02: break-even, ceiling and dilution, as exact numbers."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course.lab_support.phase_05 import format_launch_report


def test_300_kernels_at_5_us_cost_1500_us_of_launching(lab):
    assert lab.launch_overhead_us(300, 5.0) == 1500.0


def test_eager_launches_is_ops_times_calls(lab):
    assert lab.eager_launches(3, 100) == 300


def test_graph_launches_is_capture_plus_one_per_later_call(lab):
    assert lab.graph_launches(3, 100) == 102, "capture (3) + 99 replays"
    assert lab.graph_launches(300, 1, capture_cost_ops=1500) == 1500
    assert lab.graph_launches(300, 0) == 0, "no call, no capture"


def test_graph_breaks_even_at_the_second_call(lab):
    assert lab.crossover(300) == 2
    assert lab.graph_launches(300, 1) == lab.eager_launches(300, 1), "call 1: a tie, not a win"


def test_a_one_op_model_never_gains(lab):
    assert lab.crossover(1) is None
    assert lab.crossover(1, capture_cost_ops=5) is None


@pytest.mark.parametrize("num_ops,capture,expected", [
    (4, 4, 2), (4, 20, 7), (32, 32, 2), (32, 160, 6), (300, 300, 2), (300, 1500, 6),
])
def test_crossover_table(lab, num_ops, capture, expected):
    assert lab.crossover(num_ops, capture_cost_ops=capture) == expected


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(2, 400), st.integers(1, 5), st.integers(1, 2000))
def test_crossover_is_the_first_call_where_the_graph_is_strictly_ahead(lab, n, mult, extra):
    capture = n * mult
    k = lab.crossover(n, capture_cost_ops=capture)
    assert lab.graph_launches(n, k, capture) < lab.eager_launches(n, k)
    if k > 1:
        assert lab.graph_launches(n, k - 1, capture) >= lab.eager_launches(n, k - 1)
    assert lab.graph_launches(n, k + extra, capture) < lab.eager_launches(n, k + extra)


def test_speedup_after_1000_calls_of_300_ops(lab):
    assert lab.per_call_speedup(300, 1000) == pytest.approx(300_000 / 1299)
    assert round(lab.per_call_speedup(300, 1000), 2) == 230.95


def test_speedup_ceiling_is_the_op_count(lab):
    assert lab.asymptotic_speedup(300) == 300
    ratios = [lab.per_call_speedup(300, k) for k in (1, 10, 100, 10_000, 1_000_000)]
    assert ratios == sorted(ratios) and ratios[0] == 1.0, "rises monotonically from 1"
    assert 299 < ratios[-1] < 300, "approaches 300 from below"


def test_launch_fraction_of_a_half(lab):
    assert lab.launch_fraction(300, 5.0, 1500.0) == 0.5


@pytest.mark.parametrize("f,expected", [(0.5, 1.99), (0.9, 9.71), (0.99, 75.19)])
def test_amdahl_dilutes_the_300x_ceiling(lab, f, expected):
    assert round(lab.amdahl_speedup(f, 300), 2) == expected


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(2, 500), st.floats(0.5, 50), st.floats(0, 1e5))
def test_amdahl_form_equals_the_step_time_ratio(lab, n, launch_us, gpu_us):
    f = lab.launch_fraction(n, launch_us, gpu_us)
    assert lab.amdahl_speedup(f, n) == pytest.approx((n * launch_us + gpu_us) / (launch_us + gpu_us))


def test_graphs_fall_below_1_1x_once_the_gpu_works_14_9_ms_per_step(lab):
    g = lab.gpu_time_for_speedup(1.1, 300, 5.0)
    assert g == pytest.approx(14945.0)
    f = lab.launch_fraction(300, 5.0, g)
    assert lab.amdahl_speedup(f, 300) == pytest.approx(1.1)


def test_gpu_time_for_speedup_rejects_unreachable_targets(lab):
    with pytest.raises(ValueError):
        lab.gpu_time_for_speedup(1.0, 300, 5.0)
    with pytest.raises(ValueError):
        lab.gpu_time_for_speedup(300.0, 300, 5.0)


def test_a_capture_cheaper_than_one_eager_pass_wins_at_the_first_call(lab):
    assert lab.crossover(4, capture_cost_ops=1) == 1, (
        "README task 3: capture cost 1 < 4 eager launches, so the graph is strictly ahead at call 1"
    )
    assert lab.crossover(4, capture_cost_ops=7) == 3, (
        "README task 3: at call 2 the graph has paid 7 + 1 = 8 launches and eager 2 * 4 = 8: a tie is not "
        "a win, so the crossover is call 3 (9 against 12)"
    )


def test_gpu_time_for_other_op_counts_and_launch_costs(lab):
    assert lab.gpu_time_for_speedup(2.0, 4, 3.0) == pytest.approx(6.0), (
        "README task 6: (4*3 + G) / (3 + G) = 2 holds at G = 6"
    )
    assert lab.gpu_time_for_speedup(1.5, 2, 10.0) == pytest.approx(10.0), (
        "README task 6: (2*10 + G) / (10 + G) = 1.5 holds at G = 10"
    )


REPORT = """\
num_ops  capture  crossover  speedup@1000
      1        1       None          1.00
      1        5       None          1.00
      4        4          2          3.99
      4       20          7          3.93
     32       32          2         31.04
     32      160          6         27.61
    300      300          2        230.95
    300     1500          6        120.05

gpu_us  launch_share  step_speedup   (300 ops, 5 us/launch)
     0         1.000        300.00
   150         0.909         10.65
  1500         0.500          1.99
 15000         0.091          1.10"""


def test_report_matches_the_readme(lab):
    assert format_launch_report(lab) == REPORT, "README 'What you should see' quotes this table, built from your functions"
