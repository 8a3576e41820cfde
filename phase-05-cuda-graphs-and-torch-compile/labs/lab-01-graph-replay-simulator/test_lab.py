"""Spec for lab 05-01: the win (one launch per replay) and its two constraints."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# Row-wise ops; the expected value of a call is written out by hand in each test.
OPS = [lambda x: x + 1.0, lambda x: x * 2.0, lambda x: x * 5.0]


def expected(x):
    return (np.asarray(x, dtype=float) + 1.0) * 10.0


@pytest.fixture
def counter(lab):
    lab.LaunchCounter.n = 0
    yield lab.LaunchCounter
    lab.LaunchCounter.n = 0


def test_bump_adds_and_reset_zeroes(lab, counter):
    counter.bump()
    counter.bump(4)
    assert counter.n == 5
    counter.reset()
    assert counter.n == 0


def test_eager_pays_one_launch_per_op_every_call(lab, counter):
    out = lab.run_eager(OPS, np.ones(2))
    lab.run_eager(OPS, np.ones(2))
    np.testing.assert_allclose(out, expected(np.ones(2)))
    assert counter.n == 6, "run_eager: bump once per op, on every call"


def test_cudagraph_capture_runs_the_ops_once_eagerly(lab, counter):
    g = lab.CUDAGraph()
    out = g.capture(OPS, np.full(2, 1.0))
    np.testing.assert_allclose(out, [20.0, 20.0])
    assert counter.n == 3, "capture pays one launch per op (the warm-up pass)"


def test_cudagraph_replay_is_one_launch_for_fifty_ops(lab, counter):
    g = lab.CUDAGraph()
    g.capture([lambda x: x + 1.0] * 50, np.zeros(2))
    counter.reset()
    out = g.replay()
    np.testing.assert_allclose(out, [50.0, 50.0])
    assert counter.n == 1, "a replay is one launch however many ops were recorded"


def test_cudagraph_replay_reads_the_array_it_captured(lab, counter):
    g = lab.CUDAGraph()
    buf = np.full(2, 1.0)
    g.capture(OPS, buf)
    buf[:] = 5.0  # writing INTO the captured array is visible to the recording
    np.testing.assert_allclose(g.replay(), [60.0, 60.0])
    buf = np.full(2, 9.0)  # rebinding the name is not
    np.testing.assert_allclose(g.replay(), [60.0, 60.0])


def test_cudagraph_replay_writes_into_the_captured_output_array(lab, counter):
    g = lab.CUDAGraph()
    buf = np.zeros(2)
    first = g.capture(OPS, buf)
    buf[:] = 1.0
    assert g.replay() is first, "replay returns the same output array every time (upstream: entry.output)"


def test_capture_then_replay_is_one_launch(lab, counter):
    runner = lab.GraphRunner(OPS)
    runner(np.ones(4))
    assert counter.n == 3, "first call with a shape captures: one launch per op"
    runner(np.ones(4))
    assert counter.n == 4, "second call with that shape replays: one launch"


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.lists(st.floats(-100, 100), min_size=3, max_size=3), st.lists(st.floats(-100, 100), min_size=3, max_size=3))
def test_replay_output_matches_eager_for_fresh_inputs(lab, first, second):
    runner = lab.GraphRunner(OPS)
    runner(np.array(first))
    np.testing.assert_allclose(runner(np.array(second)), expected(second))


def test_static_buffer_reflects_new_input(lab, counter):
    runner = lab.GraphRunner(OPS)
    runner(np.full(2, 1.0))
    out = runner(np.full(2, 5.0))
    np.testing.assert_allclose(out, [60.0, 60.0], err_msg=(
        "got the captured batch back? copy the new input INTO entry.static_input "
        "(np.copyto); assigning a new array to the attribute does not reach the recording"))


def test_replay_keeps_the_captured_buffer_object(lab, counter):
    runner = lab.GraphRunner(OPS)
    runner(np.zeros(3))
    buf = runner.graphs[(3,)].static_input
    runner(np.arange(3.0))
    assert runner.graphs[(3,)].static_input is buf, "np.copyto into the buffer; never replace it"
    np.testing.assert_array_equal(buf, [0.0, 1.0, 2.0])


def test_capture_does_not_alias_the_callers_array(lab, counter):
    runner = lab.GraphRunner(OPS)
    x = np.full(2, 1.0)
    runner(x)
    assert runner.graphs[(2,)].static_input is not x, (
        "capture into a buffer the runner owns: the caller may reuse x for something else")


def test_new_shape_triggers_recapture(lab, counter):
    runner = lab.GraphRunner(OPS)
    runner(np.ones(4))
    runner(np.ones(8))
    assert counter.n == 6, "shape (8,) has no graph yet: a full capture"
    assert runner.num_captured == 2 and set(runner.graphs) == {(4,), (8,)}
    runner(np.ones(4))
    assert counter.n == 7


def test_graphs_win_when_overhead_dominates(lab, counter):
    runner = lab.GraphRunner(OPS)
    for _ in range(100):
        runner(np.ones(4))
    graph_launches = counter.n
    counter.reset()
    for _ in range(100):
        lab.run_eager(OPS, np.ones(4))
    assert (graph_launches, counter.n) == (102, 300)


def test_shapes_with_the_same_size_get_their_own_graphs(lab, counter):
    runner = lab.GraphRunner(OPS)
    runner(np.ones((2, 3)))
    out = runner(np.full((3, 2), 2.0))
    assert runner.num_captured == 2 and set(runner.graphs) == {(2, 3), (3, 2)}, (
        "README task 5: key the graphs by the whole shape; (2, 3) and (3, 2) hold 6 numbers each but are different graphs"
    )
    np.testing.assert_allclose(out, expected(np.full((3, 2), 2.0)))
    assert counter.n == 6, "README task 5: two unseen shapes, two captures of 3 launches each"


def test_each_replay_recomputes_from_the_buffer(lab, counter):
    runner = lab.GraphRunner(OPS)
    runner(np.zeros(2))
    for value in (1.0, 2.0, 3.0):
        out = runner(np.full(2, value))
        np.testing.assert_allclose(out, expected(np.full(2, value)), err_msg=(
            "README task 4: a replay runs the recorded ops on the captured input again; it does not "
            "hand back the last answer or build on it"))
    assert counter.n == 3 + 3, "README task 4: one capture (3 launches) and three one-launch replays"
