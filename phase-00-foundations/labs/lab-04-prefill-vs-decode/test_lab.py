"""Lab 00-04 spec: the roofline numbers for an 8B fp16 model on an A100."""
import pytest

from course.labkit import load_lab

_given = load_lab(__file__)
A100, H100, N8B = _given.A100, _given.H100, _given.N_PARAMS_8B


def a100_ridge(lab):
    return lab.ridge_point(A100.peak_flops, A100.bandwidth)


def test_a100_ridge_point(lab):
    assert a100_ridge(lab) == 156.0, "312e12 FLOP/s over 2.0e12 B/s"


def test_h100_ridge_is_higher(lab):
    assert round(lab.ridge_point(H100.peak_flops, H100.bandwidth)) == 295, "FLOPs grew faster than bandwidth"


def test_intensity_is_just_tokens_over_dtype(lab):
    assert lab.arithmetic_intensity(1, 2) == 1.0
    assert lab.arithmetic_intensity(2048, 2) == 2048.0
    assert lab.arithmetic_intensity(1, 0.5) == 4.0, "int4 weights: 4x the FLOPs per byte"


def test_single_decode_is_hopelessly_bandwidth_bound(lab):
    ridge = a100_ridge(lab)
    ai = lab.arithmetic_intensity(1, 2)
    assert not lab.is_compute_bound(ai, ridge)
    util = lab.compute_utilization(ai, ridge)
    assert round(100 * util, 2) == 0.64, "1/156 of peak: ~0.6%"


def test_prefill_is_compute_bound(lab):
    ridge = a100_ridge(lab)
    ai = lab.arithmetic_intensity(2048, 2)
    assert lab.is_compute_bound(ai, ridge)
    assert lab.compute_utilization(ai, ridge) == 1.0, "utilization is capped at 100%"


def test_critical_batch_size_is_the_ridge(lab):
    ridge = a100_ridge(lab)
    assert lab.critical_batch_size(ridge, 2) == 156
    assert not lab.is_compute_bound(lab.arithmetic_intensity(155, 2), ridge)
    assert lab.is_compute_bound(lab.arithmetic_intensity(156, 2), ridge)


def test_decode_step_is_8_ms_of_memory_and_0_05_ms_of_math(lab):
    assert lab.step_time(N8B, 2, 1, A100) == pytest.approx(8e-3, rel=1e-12), "16 GB at 2 TB/s"
    compute_only = 2 * N8B / A100.peak_flops
    assert round(compute_only * 1e3, 3) == 0.051 and round(8e-3 / compute_only) == 156


def test_prefill_2048_takes_105_ms(lab):
    assert round(lab.step_time(N8B, 2, 2048, A100) * 1e3, 1) == 105.0, "compute-bound: 2*8e9*2048 / 312e12"


def test_decode_speed_limit_8b_fp16(lab):
    assert lab.decode_tokens_per_second(N8B, 2, 1, A100) == pytest.approx(125.0, rel=1e-12)
    assert 100 / lab.decode_tokens_per_second(N8B, 2, 1, A100) == pytest.approx(0.8), "INTERVIEW Q7: 100 tok/s is 80%"


def test_batching_multiplies_decode_throughput_for_free(lab):
    assert lab.decode_tokens_per_second(N8B, 2, 64, A100) == pytest.approx(8000.0, rel=1e-12)
    assert lab.decode_tokens_per_second(N8B, 2, 512, A100) == pytest.approx(19500.0, rel=1e-12), (
        "past the ridge the step is compute-bound: peak / (2 * params) tokens/s"
    )


def test_quantized_and_faster_gpus_raise_the_ceiling(lab):
    assert lab.decode_tokens_per_second(N8B, 0.5, 1, A100) == pytest.approx(500.0, rel=1e-12), "int4: 4 GB per step"
    assert round(lab.decode_tokens_per_second(N8B, 2, 1, H100)) == 209


def test_littles_law(lab):
    assert lab.sequences_in_flight(1000.0, 0.050) == pytest.approx(50.0), "1000 tok/s at one token per 50 ms each"


def test_critical_batch_rounds_a_fractional_ridge_up(lab):
    h100 = lab.ridge_point(H100.peak_flops, H100.bandwidth)
    assert lab.critical_batch_size(h100, 2) == 296, "README task 7: H100's ridge is 295.2, so 295 is one short: 296"
    assert lab.critical_batch_size(295.01, 2) == 296, "a ridge just above an integer still needs the next batch"
    assert lab.critical_batch_size(10.0, 2) == 10, "an integer ridge needs exactly that batch, not one more"
    assert isinstance(lab.critical_batch_size(h100, 2), int), "a batch is a whole number of sequences"


def test_critical_batch_depends_on_dtype(lab):
    ridge = a100_ridge(lab)
    assert lab.critical_batch_size(ridge, 1) == 78, "README task 7: fp8 weights double the intensity: half the batch"
    assert lab.critical_batch_size(ridge, 0.5) == 39, "int4: a quarter of the batch"
    for dtype in (0.5, 1, 2):
        b = lab.critical_batch_size(ridge, dtype)
        assert lab.is_compute_bound(lab.arithmetic_intensity(b, dtype), ridge)
        assert not lab.is_compute_bound(lab.arithmetic_intensity(b - 1, dtype), ridge), "the smallest such batch"


def test_exactly_at_the_ridge_is_compute_bound_and_full_utilization(lab):
    assert lab.is_compute_bound(156.0, 156.0) is True, "README task 3: the ridge itself counts as compute-bound"
    assert lab.is_compute_bound(155.999, 156.0) is False
    assert lab.compute_utilization(156.0, 156.0) == 1.0
    assert lab.compute_utilization(78.0, 156.0) == 0.5, "README task 4: half the ridge, half the peak"
    assert lab.compute_utilization(1e9, 156.0) == 1.0, "never above 1, however high the intensity"


def test_step_time_scales_with_each_argument(lab):
    assert lab.step_time(4e9, 2, 1, A100) == pytest.approx(4e-3, rel=1e-12), "README task 5: half the weights, half the time"
    assert lab.step_time(N8B, 1, 1, A100) == pytest.approx(4e-3, rel=1e-12), "fp8: half the bytes"
    assert lab.step_time(N8B, 2, 4096, A100) == pytest.approx(2 * 8e9 * 4096 / 312e12, rel=1e-12), "compute side"
    ridge_tokens = 156  # at the ridge both sides take 8 ms
    assert lab.step_time(N8B, 2, ridge_tokens, A100) == pytest.approx(8e-3, rel=1e-12), "the max, not the sum"


def test_decode_throughput_across_the_ridge(lab):
    assert lab.decode_tokens_per_second(N8B, 2, 156, A100) == pytest.approx(19500.0, rel=1e-12), (
        "README task 6: at the critical batch the step is 8 ms for 156 tokens"
    )
    assert lab.decode_tokens_per_second(N8B, 1, 2, A100) == pytest.approx(500.0, rel=1e-12), "fp8, batch 2: 4 ms per step"


def test_littles_law_both_ways(lab):
    assert lab.sequences_in_flight(8000.0, 0.008) == pytest.approx(64.0), "README task 8: batch 64 at 8 ms per token"
    assert lab.sequences_in_flight(125.0, 0.008) == pytest.approx(1.0)
