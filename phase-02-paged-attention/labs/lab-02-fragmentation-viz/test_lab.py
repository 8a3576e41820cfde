"""Spec for lab 02-02: admissions and waste of contiguous vs paged allocation, exactly."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FREE, RESERVED, USED = 0, 1, 2


# --- the headline workload: 4096 slots, 64 requests using 32 of a 512 reservation ------

def test_contiguous_admits_8_of_64_and_wastes_93_75_percent(lab):
    _, c, _, _ = lab.compare()
    assert (c.admitted, c.rejected) == (8, 56), "4096 // 512 = 8 reservations fit (tasks 1-2, 6)"
    assert (c.used_slots, c.wasted_slots) == (256, 3840), "8 x 32 used, 8 x (512 - 32) reserved and empty"
    assert c.waste_fraction == 0.9375, "task 6: 3840 / 4096 of the held slots hold nothing"


def test_paged_admits_all_64_with_no_waste(lab):
    _, _, _, p = lab.compare()
    assert (p.admitted, p.rejected) == (64, 0), "64 x 2 blocks = 128 of the 256 blocks (task 4)"
    assert (p.used_slots, p.wasted_slots) == (2048, 0), "32 tokens fill 2 blocks of 16 exactly"
    assert p.waste_fraction == 0.0


def test_paged_waste_is_the_partial_tail_block(lab):
    _, c, _, p = lab.compare(used_len=33)
    assert p.admitted == 64 and p.wasted_slots == 64 * 15, "33 tokens: 3 blocks, 15 empty slots in the last"
    assert c.admitted == 8 and c.wasted_slots == 8 * (512 - 33)


# --- contiguous allocator (tasks 1-3) -------------------------------------------------

def test_free_runs_lists_maximal_runs_left_to_right(lab):
    a = lab.ContiguousAllocator(12, max_len=2)
    a.state[[2, 3, 7]] = USED
    assert a.free_runs() == [(0, 2), (4, 3), (8, 4)], "task 1: (start, length) of each FREE run"
    assert a.largest_free_run() == 4
    a.state[:] = USED
    assert a.free_runs() == []


def test_contiguous_reserves_max_len_and_marks_only_the_tokens_used(lab):
    a = lab.ContiguousAllocator(16, max_len=8)
    assert a.allocate(0, 3) == 0
    assert a.state.tolist() == [USED] * 3 + [RESERVED] * 5 + [FREE] * 8, "task 2"
    assert a.owner[:8].tolist() == [0] * 8


def test_contiguous_is_first_fit_into_the_first_hole_that_fits(lab):
    a = lab.ContiguousAllocator(12, max_len=4)
    assert [a.allocate(i, 1) for i in range(3)] == [0, 4, 8]
    a.free(1)
    assert a.state[4:8].tolist() == [FREE] * 4, "task 3: free gives back the whole reservation"
    assert a.allocate(3, 2) == 4, "task 2: the freed hole is the first run that fits"


def test_contiguous_takes_the_first_of_two_holes_that_fit(lab):
    a = lab.ContiguousAllocator(16, max_len=4)
    assert [a.allocate(i, 1) for i in range(4)] == [0, 4, 8, 12]
    a.free(1)
    a.free(3)
    assert a.allocate(4, 2) == 4, "task 2: first fit picks the hole at slot 4, not the one at 12"
    assert a.allocate(5, 2) == 12


def test_a_rejected_request_does_not_stop_the_ones_behind_it(lab):
    result = lab.admit_all(lab.PagedAllocator(12, 4), [4, 12, 4])
    assert (result.admitted, result.rejected) == (2, 1), (
        "task 6: the 12-token request does not fit after the first, but the third one (4 tokens) still does"
    )
    assert (result.used_slots, result.wasted_slots) == (8, 0)


def test_contiguous_rejection_changes_nothing(lab):
    a = lab.ContiguousAllocator(10, max_len=4)
    a.allocate(0, 4)
    a.allocate(1, 4)
    before = a.state.copy()
    assert a.allocate(2, 1) is None, "2 free slots cannot hold a 4-slot reservation"
    assert np.array_equal(a.state, before)
    with pytest.raises(ValueError):
        a.allocate(3, 5)


# --- paged allocator (tasks 4-5) ------------------------------------------------------

def test_paged_takes_the_lowest_free_blocks_anywhere(lab):
    p = lab.PagedAllocator(64, block_size=8)
    assert p.allocate(0, 10) == [0, 1]
    assert p.allocate(1, 8) == [2]
    p.free(0)
    assert p.state[:16].tolist() == [FREE] * 16, "task 5"
    assert p.allocate(2, 20) == [0, 1, 3], "task 4: blocks need not be adjacent"
    assert p.state[24:32].tolist() == [USED] * 4 + [RESERVED] * 4, "only the last block is partly empty"


def test_paged_rejection_changes_nothing(lab):
    p = lab.PagedAllocator(32, block_size=8)
    p.allocate(0, 20)
    before = p.state.copy()
    assert p.allocate(1, 9) is None, "1 free block cannot hold 9 tokens"
    assert np.array_equal(p.state, before) and p.block_owner.tolist() == [0, 0, 0, -1]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(lengths=st.lists(st.integers(1, 64), min_size=1, max_size=24), block_size=st.sampled_from([1, 4, 16]))
def test_waste_bounds_hold_for_any_workload(lab, lengths, block_size):
    c = lab.admit_all(lab.ContiguousAllocator(512, max_len=64), lengths)
    p = lab.admit_all(lab.PagedAllocator(512, block_size), lengths)
    assert c.admitted + c.rejected == p.admitted + p.rejected == len(lengths)
    assert p.admitted >= c.admitted, "with the same pool, paging never admits fewer (first offer order)"
    assert p.wasted_slots <= (block_size - 1) * p.admitted, "paged waste: under one block per request"
    admitted_lengths = lengths[: c.admitted] if c.rejected == 0 else None
    if admitted_lengths is not None:
        assert c.wasted_slots == sum(64 - n for n in admitted_lengths), "contiguous waste = max_len - used, summed"


# --- external fragmentation -----------------------------------------------------------

def test_half_free_pool_still_rejects_a_contiguous_request(lab):
    free_slots, largest_run, contiguous_start, paged_table = lab.external_fragmentation_demo()
    assert free_slots == 2048 and largest_run == 512, "4 holes of 512: half the pool, no run over 512"
    assert contiguous_start is None, "1024 adjacent slots do not exist"
    assert paged_table == list(range(32)) + list(range(64, 96)), "64 blocks taken from the first two holes"


# --- the picture (task 7) -------------------------------------------------------------

def test_ascii_map_marks_used_reserved_and_free(lab):
    state = np.array([USED, RESERVED, RESERVED, RESERVED, FREE, FREE, RESERVED, FREE])
    assert lab.render_ascii(state, width=8) == "|#...  . |"
    assert lab.render_ascii(state, width=4) == "|#. .|", "task 7: a cell is '#' if any slot in it is USED"


def test_report_draws_both_pools(lab):
    lines = lab.report().splitlines()
    assert lines[1] == "contiguous: admitted=8 rejected=56 used=256 wasted=3840 (93.75% of held slots)"
    assert lines[2] == "paged:      admitted=64 rejected=0 used=2048 wasted=0 (0.00% of held slots)"
    assert lines[4] == "contiguous |" + "#......." * 8 + "|"
    assert lines[5] == "paged      |" + "#" * 32 + " " * 32 + "|"


def test_png_is_written_when_matplotlib_is_installed(lab, tmp_path):
    pytest.importorskip("matplotlib")
    out = lab.render_png(tmp_path / "fragmentation.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
