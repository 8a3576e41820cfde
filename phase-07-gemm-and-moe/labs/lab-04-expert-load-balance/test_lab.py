"""Lab 07-04 spec: routing histograms, imbalance, EP step time and capacity drops.

The scenario: 64 tokens, top-2 over 8 experts, so 128 assignments in every routing.
"""
import numpy as np
import pytest

T, E, K = 64, 8, 2


@pytest.fixture(scope="module")
def balanced(lab):
    return lab.balanced_routing(T, E, K)


@pytest.fixture(scope="module")
def hot(lab):
    return lab.hot_expert_routing(T, E, hot_expert=0)


# ---------------------------------------------------------------- TODO 1-2


def test_loads_count_assignments(lab):
    ids = np.array([[0, 1], [1, 2], [1, 0]])
    assert lab.expert_loads(ids, 4).tolist() == [2, 3, 1, 0], "one count per (token, expert) pair; unused experts get 0"


def test_both_routings_carry_the_same_total_work(lab, balanced, hot):
    assert lab.expert_loads(balanced, E).tolist() == [16] * 8
    assert lab.expert_loads(hot, E).tolist() == [64, 10, 9, 9, 9, 9, 9, 9]


def test_uniform_routing_is_nearly_balanced(lab):
    loads = lab.expert_loads(lab.random_routing(800, E, K, seed=0), E)
    assert round(lab.imbalance(loads), 2) == 1.06, "1600 assignments from random logits: max/mean close to 1"


def test_hot_expert_blows_up_imbalance(lab, balanced, hot):
    assert lab.imbalance(lab.expert_loads(balanced, E)) == 1.0
    assert lab.imbalance(lab.expert_loads(hot, E)) == 4.0, "64 rows against a mean of 16"


def test_small_batches_are_lumpy_even_with_a_healthy_router(lab):
    ratios = [round(lab.imbalance(lab.expert_loads(lab.random_routing(t, E, K, seed=0), E)), 2)
              for t in (4, 8, 64, 800)]
    assert ratios == [3.0, 1.5, 1.25, 1.06]


# ---------------------------------------------------------------- TODO 3-5


def test_device_loads_default_to_round_robin_placement(lab, hot):
    loads = lab.expert_loads(hot, E)
    assert lab.device_loads(loads, 4).tolist() == [73, 19, 18, 18], "device d holds experts d and d+4"


def test_ep_step_time_is_the_max_device(lab, hot):
    loads = lab.expert_loads(hot, E)
    assert lab.ep_step_time(loads, 8) == 64.0
    assert lab.ep_step_time(loads, 4) == 73.0, "co-located experts add up: 64 + 9 on device 0"
    assert lab.ep_step_time(loads, 8, time_per_row=0.5) == 32.0


def test_imbalance_burns_parallel_efficiency(lab, balanced, hot):
    """Same 128 rows of work, four times the step on 8 devices."""
    b, h = lab.expert_loads(balanced, E), lab.expert_loads(hot, E)
    assert b.sum() == h.sum() == 128
    assert lab.ep_step_time(h, 8) / lab.ep_step_time(b, 8) == 4.0
    assert lab.parallel_efficiency(b, 8) == 1.0
    assert lab.parallel_efficiency(h, 8) == 0.25, "7 of 8 devices idle for most of the step"


def test_fewer_devices_dilute_the_hot_spot(lab, balanced, hot):
    b, h = lab.expert_loads(balanced, E), lab.expert_loads(hot, E)
    assert [round(lab.ep_step_time(h, d) / lab.ep_step_time(b, d), 2) for d in (8, 4, 2)] == [4.0, 2.28, 1.42]


def test_placement_cannot_beat_the_hot_experts_own_load(lab, hot):
    loads = lab.expert_loads(hot, E)
    alone = np.array([0, 1, 1, 2, 2, 3, 3, 1])  # expert 0 alone on device 0
    assert lab.device_loads(loads, 4, alone).tolist() == [64, 28, 18, 18]
    assert lab.ep_step_time(loads, 4, alone) == 64.0


def test_replicating_the_hot_expert_shortens_the_step(lab, hot):
    """EPLB's lever: a redundant copy of expert 0 takes half its rows (physical expert 8)."""
    loads = lab.expert_loads(hot, E)
    physical = np.append(loads, 0)
    physical[0] = physical[8] = loads[0] // 2
    placement = np.array([0, 1, 2, 3, 4, 5, 6, 7, 7])  # the copy shares device 7 with expert 7
    assert lab.ep_step_time(physical, 8, placement) == 41.0, "32 + 9 on device 7; was 64"


# ---------------------------------------------------------------- TODO 6


def test_capacity_drops_only_the_overflow(lab, hot):
    loads = lab.expert_loads(hot, E)
    assert lab.dropped_tokens(loads, 1.0) == 48, "capacity ceil(1.0 * 128 / 8) = 16; expert 0 overflows by 48"
    assert lab.dropped_tokens(loads, 1.25) == 44
    assert lab.dropped_tokens(loads, 4.0) == 0, "capacity 64 holds the hot expert"


def test_capacity_factor_one_drops_even_with_a_healthy_router(lab, balanced):
    assert lab.dropped_tokens(lab.expert_loads(balanced, E), 1.0) == 0
    random_loads = lab.expert_loads(lab.random_routing(800, E, K, seed=0), E)
    assert lab.dropped_tokens(random_loads, 1.0) == 32, "any expert above the mean overflows a cf=1 buffer"


# ---------------------------------------------------------------- boundaries the worked examples miss


def test_loads_count_every_column_not_just_the_first_choice(lab):
    assert lab.expert_loads(np.array([[3, 1, 0], [3, 2, 1]]), 5).tolist() == [1, 2, 1, 2, 0], \
        "k = 3: every column is an assignment; unused expert 4 still gets a 0 (TODO 1)"


def test_idle_experts_count_in_the_mean(lab):
    assert lab.imbalance(np.array([2, 3, 1, 0])) == 2.0, "max 3 over the mean of ALL four experts, 1.5 (TODO 2)"
    assert lab.imbalance(np.array([5, 5, 5, 5])) == 1.0


def test_more_devices_than_experts_leaves_devices_idle(lab):
    got = lab.device_loads(np.array([5, 3]), 4)
    assert got.tolist() == [5, 3, 0, 0], "one entry per device, 0 for a device with no expert (TODO 3)"
    assert lab.parallel_efficiency(np.array([5, 3]), 4) == 8 / 20, "idle devices are paid for too (TODO 5)"


def test_round_robin_is_not_contiguous(lab):
    loads = np.array([1, 2, 4, 8, 16, 32])
    assert lab.device_loads(loads, 3).tolist() == [1 + 8, 2 + 16, 4 + 32], "expert e on device e % 3 (TODO 3)"
    assert lab.device_loads(loads, 3).dtype == loads.dtype


def test_efficiency_uses_devices_and_placement(lab, hot):
    loads = lab.expert_loads(hot, E)
    assert lab.parallel_efficiency(loads, 4) == pytest.approx(128 / (4 * 73)), "num_devices, not num_experts (TODO 5)"
    alone = np.array([0, 1, 1, 2, 2, 3, 3, 1])
    assert lab.parallel_efficiency(loads, 4, alone) == pytest.approx(128 / (4 * 64)), "pass the placement on (TODO 5)"
    assert lab.ep_step_time(loads, 4, alone, time_per_row=2.0) == 128.0


def test_capacity_rounds_up_to_whole_rows(lab):
    # 4 rows over 3 experts: fair share 1.33, capacity ceil(1.33) = 2; round() would give 1.
    assert lab.dropped_tokens(np.array([4, 0, 0]), 1.0) == 2, "capacity = ceil(factor * total / E) (TODO 6)"
    # 5 rows over 3 experts: 1.67 -> 2 either way, so 3 dropped.
    assert lab.dropped_tokens(np.array([5, 0, 0]), 1.0) == 3
    assert lab.dropped_tokens(np.array([3, 3, 3]), 1.0) == 0, "an exact fair share drops nothing"


def test_drops_are_counted_in_rows_not_experts(lab):
    assert lab.dropped_tokens(np.array([10, 10, 0, 0]), 1.0) == 10, "capacity 5: two experts overflow by 5 rows each"
    assert isinstance(lab.dropped_tokens(np.array([10, 10, 0, 0]), 1.0), int)
