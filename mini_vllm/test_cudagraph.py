"""Spec for mini_vllm.cudagraph: the launch accounting, both graph constraints, the
stale-buffer bug, piecewise splitting and the capture-size ladder."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.cudagraph import (
    GraphEntry,
    GraphRunner,
    LaunchCounter,
    PiecewiseGraphRunner,
    default_capture_sizes,
    max_cudagraph_capture_size,
    run_eager,
    select_capture_size,
    split_into_segments,
)

# Row-wise ops, so padded rows never touch real ones.
OPS = [lambda x: x + 1.0, lambda x: x * 2.0, np.tanh]


@pytest.fixture(autouse=True)
def _fresh_counter():
    LaunchCounter.reset()
    yield
    LaunchCounter.reset()


def eager_reference(x):
    before = LaunchCounter.n
    out = run_eager(OPS, x)
    LaunchCounter.n = before  # the reference must not disturb the count under test
    return out


def test_eager_pays_one_launch_per_op_every_call():
    run_eager(OPS, np.ones(4))
    run_eager(OPS, np.ones(4))
    assert LaunchCounter.n == 6


def test_capture_pays_every_op_then_each_replay_pays_one():
    runner = GraphRunner(OPS)
    runner(np.ones(4))
    assert LaunchCounter.n == 3, "capture runs the ops once, eagerly"
    runner(np.ones(4))
    runner(np.ones(4))
    assert LaunchCounter.n == 5, "two replays: one launch each"


def test_hundred_calls_cost_102_launches_with_a_graph_and_300_without():
    runner = GraphRunner(OPS)
    for _ in range(100):
        runner(np.ones(4))
    graph = LaunchCounter.n
    LaunchCounter.reset()
    for _ in range(100):
        run_eager(OPS, np.ones(4))
    assert (graph, LaunchCounter.n) == (102, 300)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=3, max_size=3), st.lists(st.floats(-5, 5), min_size=3, max_size=3))
def test_replay_output_equals_eager_output_for_fresh_inputs(first, second):
    runner = GraphRunner(OPS)
    runner(np.array(first))
    out = runner(np.array(second))
    np.testing.assert_allclose(out, eager_reference(np.array(second)))


def test_replay_reads_the_new_input_not_the_captured_one():
    runner = GraphRunner(OPS)
    runner(np.full(2, 1.0))
    np.testing.assert_allclose(runner(np.full(2, 5.0)), np.tanh(12.0))


def test_replay_keeps_the_captured_input_buffer_object():
    runner = GraphRunner(OPS)
    runner(np.zeros(3))
    buf = runner.graphs[(3,)].static_input
    runner(np.arange(3.0))
    assert runner.graphs[(3,)].static_input is buf
    np.testing.assert_array_equal(buf, [0.0, 1.0, 2.0])


def test_replay_returns_the_same_output_buffer_each_time():
    # Upstream returns entry.output on every replay: a caller that keeps the
    # previous step's output sees it overwritten by the next replay.
    runner = GraphRunner(OPS)
    runner(np.zeros(2))
    first = runner(np.full(2, 1.0))
    kept = first.copy()
    second = runner(np.full(2, 2.0))
    assert np.shares_memory(first, second)
    assert not np.allclose(first, kept)


def test_new_shape_captures_a_new_graph_and_keeps_the_old_one():
    runner = GraphRunner(OPS)
    runner(np.ones(4))
    runner(np.ones(8))
    assert runner.num_captured == 2
    assert set(runner.graphs) == {(4,), (8,)}
    assert LaunchCounter.n == 6, "the second shape pays a full capture"
    runner(np.ones(4))
    assert LaunchCounter.n == 7, "the first shape still replays"


class RebindingGraphRunner(GraphRunner):
    """The classic bug: point the entry at the new array instead of copying into it."""

    def load_inputs(self, entry: GraphEntry, x: np.ndarray) -> None:
        entry.static_input = x.copy()


def test_rebinding_instead_of_copying_replays_the_stale_batch():
    buggy = RebindingGraphRunner(OPS)
    captured = buggy(np.full(2, 1.0)).copy()
    out = buggy(np.full(2, 5.0))
    np.testing.assert_allclose(out, captured)
    assert not np.allclose(out, eager_reference(np.full(2, 5.0))), (
        "the recording reads the buffer it captured; rebinding a name cannot reach it"
    )


def test_debug_mode_catches_a_rebound_input_buffer():
    buggy = RebindingGraphRunner(OPS, debug=True)
    buggy(np.ones(2))
    with pytest.raises(AssertionError, match="copy into it"):
        buggy(np.ones(2))


def test_capture_sizes_pad_odd_batches_up_to_the_next_rung():
    runner = GraphRunner(OPS, capture_sizes=[1, 2, 4, 8])
    out5 = runner(np.ones((5, 2)))
    out7 = runner(np.full((7, 2), 3.0))
    assert set(runner.graphs) == {(8, 2)}
    assert runner.padded_shape((5, 2)) == (8, 2)
    assert out5.shape == (5, 2) and out7.shape == (7, 2)
    np.testing.assert_allclose(out7, eager_reference(np.full((7, 2), 3.0)))


def test_padding_captures_four_graphs_for_batches_1_to_8_instead_of_eight():
    padded = GraphRunner(OPS, capture_sizes=[1, 2, 4, 8])
    exact = GraphRunner(OPS)
    for b in range(1, 9):
        padded(np.ones((b, 2)))
        exact(np.ones((b, 2)))
    assert (padded.num_captured, exact.num_captured) == (4, 8)


def test_padding_rows_are_zeroed_before_each_replay():
    runner = GraphRunner(OPS, capture_sizes=[4])
    runner(np.full((4, 1), 9.0))
    runner(np.ones((2, 1)))
    np.testing.assert_array_equal(runner.graphs[(4, 1)].static_input[2:], 0.0)


def test_batch_above_the_top_rung_runs_eagerly():
    runner = GraphRunner(OPS, capture_sizes=[1, 2, 4])
    out = runner(np.ones((5, 1)))
    assert runner.num_captured == 0 and runner.num_eager_calls == 1
    assert LaunchCounter.n == 3
    np.testing.assert_allclose(out, eager_reference(np.ones((5, 1))))


def test_split_keeps_consecutive_uncapturable_ops_in_one_segment():
    ops = [lambda x: x] * 5
    segments = split_into_segments(ops, lambda i: i not in (1, 2))
    assert [(cap, len(seg)) for cap, seg in segments] == [(True, 1), (False, 2), (True, 2)]


def test_piecewise_split_at_the_middle_op_gives_two_graphs():
    runner = PiecewiseGraphRunner(OPS, is_capturable=lambda i: i != 1)
    assert runner.num_graphs == 2
    assert runner.launches_per_replay == 3


def test_piecewise_output_equals_eager_output():
    runner = PiecewiseGraphRunner(OPS, is_capturable=lambda i: i != 1)
    runner(np.zeros(3))
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(runner(x), eager_reference(x))


def test_piecewise_ten_ops_split_at_op_5_costs_3_launches_per_replay():
    ops = [lambda x: x + 1.0] * 10
    runner = PiecewiseGraphRunner(ops, is_capturable=lambda i: i != 5)
    runner(np.zeros(2))
    assert LaunchCounter.n == 10, "first call: both pieces capture (9) + the eager op (1)"
    LaunchCounter.reset()
    runner(np.zeros(2))
    assert LaunchCounter.n == runner.launches_per_replay == 3
    assert runner.num_captured == 2


def test_default_ladder_for_a_top_of_64():
    assert default_capture_sizes(64) == [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64]


def test_default_ladder_for_a_top_of_512_has_51_rungs():
    sizes = default_capture_sizes(512)
    assert len(sizes) == 51
    assert sizes[:4] == [1, 2, 4, 8] and sizes[-3:] == [480, 496, 512]
    assert 248 in sizes and 264 not in sizes, "every 8 below 256, every 16 from 256"


def test_default_ladder_adds_a_small_token_budget_as_its_top_rung():
    top = max_cudagraph_capture_size(max_num_seqs=256, max_num_batched_tokens=100)
    assert top == 100
    assert default_capture_sizes(top, max_num_batched_tokens=100)[-2:] == [96, 100]


def test_max_capture_size_is_twice_max_num_seqs_capped_at_512():
    assert max_cudagraph_capture_size(64, 8192) == 128
    assert max_cudagraph_capture_size(256, 8192) == 512
    assert max_cudagraph_capture_size(1024, 16384) == 512
    assert max_cudagraph_capture_size(64, 8192, num_speculative_tokens=1) == 256


def test_select_capture_size_rounds_up_and_gives_up_above_the_top():
    sizes = default_capture_sizes(64)
    assert select_capture_size(sizes, 33) == 40
    assert select_capture_size(sizes, 40) == 40
    assert select_capture_size(sizes, 65) is None
