"""Spec of lab 06-04: the per-tensor W8A8 cliff and the SmoothQuant migration."""

import numpy as np
import pytest

from mini_vllm import quant
from mini_vllm.quant import relative_error


@pytest.fixture(scope="module")
def outlier_case(lab):
    x, w = lab.make_activations(outliers=True), lab.make_weight()
    return x, w, x @ w.T


@pytest.fixture(scope="module")
def control_case(lab):
    x, w = lab.make_activations(outliers=False), lab.make_weight()
    return x, w, x @ w.T


def test_scales_follow_the_smoothquant_formula(lab):
    x_absmax, w_absmax = np.array([4.0, 1.0, 9.0]), np.array([1.0, 4.0, 1.0])
    np.testing.assert_allclose(lab.smoothquant_scales(x_absmax, w_absmax, 0.5), [2.0, 0.5, 3.0],
                               err_msg="s_j = max|X_j|^a / max|W_j|^(1-a) (TODO 1)")
    np.testing.assert_allclose(lab.smoothquant_scales(x_absmax, w_absmax, 1.0), x_absmax,
                               err_msg="alpha = 1 divides every X channel by its own max")
    np.testing.assert_allclose(lab.smoothquant_scales(x_absmax, w_absmax, 0.0), 1 / w_absmax,
                               err_msg="alpha = 0 is NOT the identity: it normalizes W's columns")


def test_zero_channel_gets_scale_one(lab):
    s = lab.smoothquant_scales(np.array([0.0, 2.0]), np.array([1.0, 0.0]), 0.5)
    assert s.tolist() == [1.0, 1.0], "a channel that is all zero on either side has nothing to migrate (TODO 1)"


def test_smoothing_is_mathematically_exact(lab, outlier_case):
    x, w, ref = outlier_case
    xh, wh, s = lab.smooth(x, w, alpha=0.5)
    assert s.shape == (x.shape[1],), "one factor per input channel (TODO 2)"
    assert np.max(np.abs(xh @ wh.T - ref)) < 1e-10, "X/s times (W*s)^T must equal X W^T: no approximation (TODO 2)"


def test_fake_quant_w8a8_equals_the_integer_kernel(lab, outlier_case):
    x, w, _ = outlier_case
    ours = lab.w8a8_matmul(x, w)
    integer = quant.w8a8_matmul(x, w)  # int8 x int8 -> int32 sums, scales applied at the end
    np.testing.assert_allclose(ours, integer, rtol=1e-4, atol=1e-6,
                               err_msg="x per tensor, w per output channel, both int8 (TODO 3)")


def test_outliers_wreck_naive_w8a8(lab, outlier_case):
    x, w, ref = outlier_case
    err = relative_error(ref, lab.w8a8_matmul(x, w))
    assert err > 0.05, "two 80x channels should push per-tensor W8A8 past 5% error"
    assert err == pytest.approx(0.0878, abs=5e-4), f"README states 8.78%, got {err:.2%}"
    assert np.abs(x).max() == pytest.approx(285.18, abs=0.01), "the loudest activation sets the per-tensor scale"
    quiet = np.ones(x.shape[1], dtype=bool)
    quiet[list(lab.OUTLIER_CHANNELS)] = False
    codes, _ = quant.quantize_per_tensor(x)
    assert np.mean(codes[:, quiet] == 0) == pytest.approx(0.742, abs=1e-3), "the mechanism: quiet entries round to 0"


def test_smoothing_rescues_w8a8(lab, outlier_case):
    x, w, ref = outlier_case
    raw = relative_error(ref, lab.w8a8_matmul(x, w))
    xh, wh, _ = lab.smooth(x, w, alpha=0.5)
    smoothed = relative_error(ref, lab.w8a8_matmul(xh, wh))
    assert smoothed == pytest.approx(0.0128, abs=5e-4)
    assert raw / smoothed > 3, f"migration should cut the error > 3x, got {raw / smoothed:.1f}x"
    assert raw / smoothed == pytest.approx(6.86, abs=0.05)


def test_per_token_scales_help_less_than_smoothing(lab, outlier_case):
    x, w, ref = outlier_case
    per_token = relative_error(ref, lab.w8a8_matmul(x, w, act="per_token"))
    assert per_token == pytest.approx(0.0326, abs=5e-4), "one scale per row of X (TODO 3)"
    xh, wh, _ = lab.smooth(x, w)
    assert relative_error(ref, lab.w8a8_matmul(xh, wh)) < per_token, \
        "per-token scales fix loud tokens, not loud channels: every token still contains the two outliers"


def test_no_outliers_means_little_to_gain(lab, control_case):
    x, w, ref = control_case
    raw = relative_error(ref, lab.w8a8_matmul(x, w))
    xh, wh, _ = lab.smooth(x, w)
    smoothed = relative_error(ref, lab.w8a8_matmul(xh, wh))
    assert raw < 0.02, "healthy activations quantize fine per tensor"
    assert raw == pytest.approx(0.0126, abs=5e-4) and smoothed == pytest.approx(0.0111, abs=5e-4)
    assert 1.0 < raw / smoothed < 1.2, "on healthy tensors the migration changes little"


def test_migration_actually_moved_the_magnitude(lab, outlier_case):
    x, w, _ = outlier_case
    xh, wh, _ = lab.smooth(x, w)
    before, after = lab.channel_ratio(x), lab.channel_ratio(xh)
    assert before == pytest.approx(100.4, abs=0.1) and after == pytest.approx(10.76, abs=0.01)
    assert before / after > 5, "X's loudest-to-median channel ratio must collapse"
    assert np.abs(wh).max() == pytest.approx(7.044, abs=1e-3), "...and W's max must grow: the loudness moved into W"
    assert lab.channel_ratio(w) == pytest.approx(1.465, abs=1e-3)
    assert lab.channel_ratio(wh) == pytest.approx(after, rel=1e-9), "alpha = 1/2 gives X-hat and W-hat equal column maxima"


def test_alpha_sweep_bottoms_out_at_one_half(lab, outlier_case):
    x, w, ref = outlier_case
    err = {}
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        xh, wh, _ = lab.smooth(x, w, alpha)
        err[alpha] = relative_error(ref, lab.w8a8_matmul(xh, wh))
    assert err == pytest.approx({0.0: 0.0985, 0.25: 0.0323, 0.5: 0.0128, 0.75: 0.0139, 1.0: 0.0352}, abs=2e-4)
    assert min(err, key=err.get) == 0.5, "too little alpha leaves X loud, too much makes W loud"


def test_alpha_is_the_share_of_x_loudness_that_moves(lab):
    x_absmax, w_absmax = np.array([16.0, 1.0]), np.array([1.0, 16.0])
    np.testing.assert_allclose(lab.smoothquant_scales(x_absmax, w_absmax, 0.25), [2.0, 0.125],
                               err_msg="s_j = max|X_j|^alpha / max|W_j|^(1 - alpha): alpha is X's exponent (TODO 1)")


def test_zero_on_one_side_only_still_gets_scale_one(lab):
    s = lab.smoothquant_scales(np.array([0.0, 3.0, 0.0]), np.array([5.0, 0.0, 0.0]), 0.75)
    assert s.tolist() == [1.0, 1.0, 1.0] and np.all(np.isfinite(s)), "either maximum 0 -> factor 1 (TODO 1)"


def test_smooth_divides_x_and_multiplies_w_per_input_channel(lab):
    x = np.array([[8.0, 1.0], [-2.0, 0.5]])
    w = np.array([[2.0, 1.0], [-1.0, 4.0], [0.5, 0.5]])  # (out=3, in=2): maxima per input column are [2, 4]
    xh, wh, s = lab.smooth(x, w, alpha=0.5)
    np.testing.assert_allclose(s, [np.sqrt(8 / 2), np.sqrt(1 / 4)], err_msg="column maxima of |x| and |w| (TODO 2)")
    np.testing.assert_allclose(xh, x / s, err_msg="X is divided by s (TODO 2)")
    np.testing.assert_allclose(wh, w * s, err_msg="W's column j is multiplied by s_j (TODO 2)")


def test_smooth_passes_alpha_through(lab):
    x = np.array([[9.0, 1.0]])
    w = np.array([[1.0, 1.0]])
    _, _, s = lab.smooth(x, w, alpha=1.0)
    np.testing.assert_allclose(s, [9.0, 1.0], err_msg="smooth must use the alpha it is given (TODO 2)")


def test_unknown_activation_mode_is_rejected(lab):
    x, w = np.ones((2, 4)), np.ones((3, 4))
    for act in ("per_channel", "PER_TENSOR", ""):
        with pytest.raises(ValueError):
            lab.w8a8_matmul(x, w, act=act)


def test_per_token_mode_equals_the_integer_kernel(lab, outlier_case):
    x, w, _ = outlier_case
    np.testing.assert_allclose(lab.w8a8_matmul(x, w, act="per_token"), quant.w8a8_matmul(x, w, act="per_token"),
                               rtol=1e-4, atol=1e-6, err_msg="one scale per row of x, w per output channel (TODO 3)")
