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
