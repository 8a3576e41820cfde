"""Spec of lab 06-01: int8 per-channel / per-tensor fake quantization."""

import numpy as np
import pytest

from mini_vllm.quant import relative_error


def test_per_channel_scale_is_row_absmax_over_127(lab):
    w = np.array([[2.54, -1.0, 0.0], [0.0, 0.5, -0.3]], dtype=np.float32)
    q, scales = lab.quantize_per_channel(w)
    np.testing.assert_allclose(scales, [0.02, 0.5 / 127], rtol=1e-6,
                               err_msg="scale[o] = max|w[o]| / 127, one per output row (TODO 1)")
    assert q.dtype == np.int8, "store the grid index as int8 (TODO 1)"
    assert q.tolist() == [[127, -50, 0], [0, 127, -76]], "q = round(w / scale); -0.3 / (0.5/127) = -76.2 -> -76"


def test_all_zero_row_gets_scale_one_instead_of_nan(lab):
    w = np.zeros((2, 4), dtype=np.float32)
    w[1] = [1.0, -1.0, 0.5, 0.0]
    q, scales = lab.quantize_per_channel(w)
    assert scales[0] == 1.0, "an all-zero row must get scale 1.0, not 0 (0/0 is NaN) — README step 1"
    assert np.all(q[0] == 0) and np.all(np.isfinite(lab.dequantize(q, scales)))
    _, s = lab.quantize_per_tensor(np.zeros((3, 3), dtype=np.float32))
    assert s == 1.0, "the per-tensor quantizer needs the same zero guard (TODO 2)"


def test_static_scale_clips_after_rounding(lab):
    # Calibration chose 0.01; at run time 1.276 / 0.01 = 127.6 rounds to 128.
    q, _ = lab.quantize_per_tensor(np.array([1.276, -1.276, 5.0, 0.01], dtype=np.float32), scale=0.01)
    assert q.dtype == np.int8
    assert q.tolist() == [127, -127, 127, 1], "clip to [-127, 127] AFTER rounding, or 128 wraps to -128 (TODO 2)"


def test_dequantize_broadcasts_scalar_and_per_row_scales(lab):
    q = np.array([[1, -2], [3, 4]], dtype=np.int8)
    np.testing.assert_allclose(lab.dequantize(q, np.array([0.5, 2.0], dtype=np.float32)), [[0.5, -1.0], [6.0, 8.0]])
    np.testing.assert_allclose(lab.dequantize(q, np.float32(0.25)), [[0.25, -0.5], [0.75, 1.0]],
                               err_msg="a 0-d scale multiplies every element (TODO 3)")


def test_roundtrip_error_is_0_75_percent_on_gaussian_weights(lab):
    w = lab.gaussian((256, 512))
    err = relative_error(w, lab.dequantize(*lab.quantize_per_channel(w)))
    assert err < 0.01, f"per-channel int8 should lose < 1%, got {err:.2%}"
    assert err == pytest.approx(0.0075, abs=5e-5), f"README states 0.75%; got {err:.4%}"


def test_memory_saving_is_3_97x_vs_fp32(lab):
    w = lab.gaussian((256, 512))
    q, scales = lab.quantize_per_channel(w)
    assert lab.memory_bytes(w) == 524_288
    assert lab.memory_bytes_quant(q, scales) == 256 * 512 + 256 * 4, "int8 payload + one float32 scale per row (TODO 5)"
    assert lab.memory_bytes(w) / lab.memory_bytes_quant(q, scales) == pytest.approx(3.969, abs=1e-3)


def test_per_channel_beats_per_tensor_on_outlier_row(lab):
    w = lab.with_outlier_row(lab.gaussian((256, 512)), row=7, factor=100.0)
    rest = np.arange(256) != 7
    e_pc = relative_error(w[rest], lab.dequantize(*lab.quantize_per_channel(w))[rest])
    qt, st = lab.quantize_per_tensor(w)
    e_pt = relative_error(w[rest], lab.dequantize(qt, st)[rest])
    assert e_pc == pytest.approx(0.0075, abs=5e-5), "per-channel: the loud row only sets its own scale"
    assert e_pt == pytest.approx(0.717, abs=1e-3), f"per-tensor error on the quiet rows: README states 71.7%, got {e_pt:.1%}"
    assert np.mean(qt[rest] == 0) == pytest.approx(0.800, abs=1e-3), "80% of quiet weights round to zero"


def test_quant_linear_matches_fp_matmul_within_0_76_percent(lab):
    w, x = lab.gaussian((256, 512)), lab.gaussian((16, 512), seed=1)
    q, scales = lab.quantize_per_channel(w)
    y = lab.quant_linear(x, q, scales)
    assert y.shape == (16, 256), "quant_linear(x, q, s) = x @ dequantize(q, s).T (TODO 4)"
    assert relative_error(x @ w.T, y) == pytest.approx(0.0076, abs=5e-5)


def test_the_loudest_negative_value_maps_to_minus_127(lab):
    q, scales = lab.quantize_per_channel(np.array([[-2.54, 1.27, 0.01]], dtype=np.float32))
    assert q.tolist() == [[-127, 64, 0]], "the scale covers max |w|, so a negative extreme lands on -127 (TODO 1)"
    np.testing.assert_allclose(scales, [0.02], rtol=1e-6)


def test_exact_halves_round_to_even_like_torch_round(lab):
    # 1.25 / 0.5 = 2.5 exactly: ties go to the even neighbour (2), as torch.round and the kernel do.
    w = np.array([1.25, 1.75, -1.25, 0.25], dtype=np.float32)
    q, _ = lab.quantize_per_tensor(w, scale=0.5)
    assert q.tolist() == [2, 4, -2, 0], "round half to even (np.rint), not half up and not toward zero (TODO 2)"
    q, _ = lab.quantize_per_channel(np.array([[127.0, 2.5, -0.5, 1.5]], dtype=np.float32))
    assert q.tolist() == [[127, 2, 0, 2]], "the per-channel quantizer rounds ties to even too (TODO 1)"


def test_codes_just_below_a_half_step_round_down(lab):
    q, _ = lab.quantize_per_tensor(np.array([0.0149, 0.0249, -0.0149], dtype=np.float32), scale=0.01)
    assert q.tolist() == [1, 2, -1], "round to nearest: 1.49 -> 1, 2.49 -> 2 (not up, not truncated) (TODO 2)"


def test_static_scale_saturates_both_ends_of_a_symmetric_grid(lab):
    q, s = lab.quantize_per_tensor(np.array([[1e6, -1e6], [-1.28, 1.28]], dtype=np.float32), scale=0.01)
    assert q.tolist() == [[127, -127], [-127, 127]], "huge values saturate at +-127; -128 is not on the grid (TODO 2)"
    assert float(s) == pytest.approx(0.01), "a static scale is returned as given, not recomputed from the data"


def test_dynamic_per_tensor_scale_is_tensor_absmax_over_127(lab):
    q, s = lab.quantize_per_tensor(np.array([[0.5, -2.54], [1.27, 0.0]], dtype=np.float32))
    assert np.ndim(s) == 0 and float(s) == pytest.approx(0.02, rel=1e-6), "one 0-d scale: max |w| over the whole tensor / 127"
    assert q.tolist() == [[25, -127], [64, 0]]


def test_dequantize_scales_rows_not_columns_on_a_non_symmetric_case(lab):
    q = np.array([[10, 20, 30], [1, 2, 3], [-1, 0, 1]], dtype=np.int8)
    got = lab.dequantize(q, np.array([0.1, 1.0, 10.0], dtype=np.float32))
    np.testing.assert_allclose(got, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [-10.0, 0.0, 10.0]], rtol=1e-6,
                               err_msg="scale o multiplies ROW o; broadcasting a vector against the last axis scales columns (TODO 3)")
    assert got.dtype == np.float32


def test_quant_linear_applies_the_row_scales(lab):
    q = np.array([[2, 0], [0, 4]], dtype=np.int8)
    y = lab.quant_linear(np.array([[1.0, 1.0], [2.0, -1.0]]), q, np.array([0.5, 0.25], dtype=np.float32))
    np.testing.assert_allclose(y, [[1.0, 1.0], [2.0, -1.0]], err_msg="x @ (q * scales per row).T (TODO 4)")


def test_memory_counts_each_dtype_at_its_own_width(lab):
    w16 = np.zeros((8, 8), dtype=np.float16)
    assert lab.memory_bytes(w16) == 128, "an fp16 tensor is 2 bytes per element (TODO 5)"
    q, s = lab.quantize_per_tensor(np.ones((4, 4), dtype=np.float32))
    assert lab.memory_bytes_quant(q, s) == 16 + 4, "16 int8 codes + one 0-d float32 scale (4 bytes) (TODO 5)"
