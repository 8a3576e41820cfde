"""Spec of lab 06-03: group-wise int4 scales and nibble packing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course.labkit import load_lab
from course.lab_support import phase_06
from mini_vllm.quant import relative_error

lab_module = load_lab(__file__)

codes = arrays(np.int8, st.tuples(st.integers(1, 6), st.integers(1, 16).map(lambda n: 2 * n)),
               elements=st.integers(-8, 7))


@settings(max_examples=40, deadline=None)
@given(q=codes)
def test_pack_unpack_roundtrip_is_exact(q):
    packed = lab_module.pack_int4(q)
    assert packed.dtype == np.uint8 and packed.shape == (q.shape[0], q.shape[1] // 2), \
        "two codes per byte: (rows, n) -> (rows, n // 2) uint8 (TODO 3)"
    np.testing.assert_array_equal(lab_module.unpack_int4(packed), q, err_msg="unpack must invert pack (TODO 4)")


def test_packed_checkpoint_shape(lab):
    q, _ = lab.quantize_grouped(lab.gaussian((16, 64)), group_size=32)
    packed = lab.pack_int4(q)
    assert packed.shape == (16, 32) and packed.dtype == np.uint8


def test_pack_layout_even_column_low_nibble_offset_by_8(lab):
    packed = lab.pack_int4(np.array([[-7, 7, 0, -8]], dtype=np.int8))
    assert packed.tolist() == [[0xF1, 0x08]], "byte = (q[2k] + 8) | (q[2k+1] + 8) << 4 (TODO 3)"


def test_pack_rejects_codes_outside_int4(lab):
    with pytest.raises(ValueError):
        lab.pack_int4(np.array([[8, 0]], dtype=np.int8))


def test_group_scales_shape_and_codes_clip_at_7(lab):
    w = lab.gaussian((8, 256))
    q, scales = lab.quantize_grouped(w, group_size=64)
    assert scales.shape == (8, 4), "one scale per (row, group of 64 columns) (TODO 1)"
    assert q.dtype == np.int8 and q.min() >= -7 and q.max() <= 7, "symmetric int4 uses [-7, 7]"
    assert np.all(np.abs(q).reshape(8, 4, 64).max(axis=2) == 7), "each group's loudest value maps to +-7"
    np.testing.assert_allclose(scales, np.abs(w).reshape(8, 4, 64).max(axis=2) / 7, rtol=1e-6)


def test_all_zero_group_gets_scale_one(lab):
    w = lab.gaussian((2, 64))
    w[1, :32] = 0
    q, scales = lab.quantize_grouped(w, group_size=32)
    assert scales[1, 0] == 1.0 and np.all(q[1, :32] == 0), "guard zero scales, as in lab-01 (TODO 1)"


def test_grouped_roundtrip_error_bounded(lab):
    w = lab.gaussian((256, 1024))
    q, scales = lab.quantize_grouped(w, group_size=32)
    err = relative_error(w, lab.dequantize_grouped(q, scales, group_size=32))
    assert err < 0.15, f"int4, group 32 should stay under 15% on Gaussian weights, got {err:.1%} (TODO 2)"
    assert err == pytest.approx(0.0973, abs=5e-4)


def test_smaller_groups_capture_local_magnitude(lab):
    w = lab.channel_scaled((256, 1024))
    err = {g: relative_error(w, lab.dequantize_grouped(*lab.quantize_grouped(w, g), g)) for g in (16, 128, 256)}
    assert err[16] == pytest.approx(0.1035, abs=5e-4)
    assert err[128] == pytest.approx(0.1750, abs=5e-4)
    assert err[256] == pytest.approx(0.2001, abs=5e-4)
    assert err[256] / err[16] > 1.9, "a group's scale follows its own loudest channel: smaller groups, less error"


def test_memory_about_8x_smaller_than_fp32(lab):
    nbytes = lab.memory_bytes_grouped((256, 1024), group_size=128)
    assert nbytes == 256 * 1024 // 2 + 256 * 8 * 2 == 135_168, "half a byte per weight + one fp16 scale per group (TODO 5)"
    assert 256 * 1024 * 4 / nbytes == pytest.approx(7.758, abs=1e-3)
    assert 256 * 1024 * 2 / nbytes == pytest.approx(3.879, abs=1e-3), "vs fp16, the dtype vLLM serves: ~3.9x"


def test_group_scale_overhead_is_the_tradeoff(lab):
    shape = (256, 1024)
    payload = 256 * 1024 // 2
    overhead = {g: lab.memory_bytes_grouped(shape, g) - payload for g in (16, 128)}
    assert overhead[16] == 8 * overhead[128] == 8 * 4096, "group 16 stores exactly 8x the scales of group 128"
    assert lab.memory_bytes_grouped(shape, 16) / (256 * 1024) == 0.625, "0.5 + 2/16 bytes per weight"


def test_group_size_sweep_matches_readme_table(lab):
    expected = {16: (0.0853, 0.1035, 0.625), 32: (0.0973, 0.1265, 0.5625), 64: (0.1080, 0.1499, 0.53125),
                128: (0.1177, 0.1750, 0.515625), 256: (0.1268, 0.2001, 0.5078125), 1024: (0.1427, 0.2554, 0.501953125)}
    for g, e_plain, e_scaled, bpw in phase_06.lab03_sweep(lab):
        want = expected[g]
        assert (round(e_plain, 4), round(e_scaled, 4), bpw) == pytest.approx(want, abs=1.5e-4), f"group {g}"


def test_readme_example_groups_are_consecutive_columns_and_ties_go_even(lab):
    w = np.array([[1.75, -0.625, 0, 0.375, 3.5, 0, 0, -0.75]], dtype=np.float32)
    q, scales = lab.quantize_grouped(w, group_size=4)
    np.testing.assert_array_equal(scales, [[0.25, 0.5]],
                                  err_msg="group k = columns 4k..4k+3 of the row, scale = its max|.| / 7 (TODO 1)")
    assert q.tolist() == [[7, -2, 0, 2, 7, 0, 0, -2]], "-2.5 -> -2 and 1.5 -> 2: round half to even (TODO 1)"
    np.testing.assert_array_equal(lab.dequantize_grouped(q, scales, group_size=4),
                                  [[1.75, -0.5, 0, 0.5, 3.5, 0, 0, -1.0]],
                                  err_msg="code j times the scale of group j // group_size (TODO 2)")


def test_group_size_that_does_not_divide_the_row_is_rejected(lab):
    with pytest.raises(ValueError):
        lab.quantize_grouped(np.ones((2, 96), dtype=np.float32), group_size=64)


def test_group_size_equal_to_the_row_is_per_channel(lab):
    w = lab.gaussian((4, 64))
    q, scales = lab.quantize_grouped(w, group_size=64)
    assert scales.shape == (4, 1), "one group spanning the row: lab-01's per-channel layout (TODO 1)"
    np.testing.assert_allclose(scales[:, 0], np.abs(w).max(axis=1) / 7, rtol=1e-6)


def test_dequantize_uses_each_groups_own_scale(lab):
    q = np.ones((2, 6), dtype=np.int8)
    scales = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    np.testing.assert_array_equal(lab.dequantize_grouped(q, scales, group_size=2),
                                  [[1, 1, 2, 2, 3, 3], [4, 4, 5, 5, 6, 6]],
                                  err_msg="repeat each scale over its group; tiling the scale vector is wrong (TODO 2)")


def test_pack_rejects_odd_widths_and_codes_below_minus_8(lab):
    with pytest.raises(ValueError):
        lab.pack_int4(np.array([[3]], dtype=np.int8))  # one column: nothing to pair it with (TODO 3)
    with pytest.raises(ValueError):
        lab.pack_int4(np.array([[1, 2, 3]], dtype=np.int8))
    with pytest.raises(ValueError):
        lab.pack_int4(np.array([[-9, 0]], dtype=np.int8))


def test_unpack_reads_both_nibbles_of_a_full_byte(lab):
    assert lab.unpack_int4(np.array([[0xF1, 0x08, 0xFF, 0x00]], dtype=np.uint8)).tolist() == \
        [[-7, 7, 0, -8, 7, 7, -8, -8]], "low nibble first, each minus 8 (TODO 4)"


def test_memory_uses_the_scale_width_it_is_given(lab):
    assert lab.memory_bytes_grouped((256, 1024), group_size=128, scale_bytes=4) == 131_072 + 256 * 8 * 4, \
        "float32 scales cost 4 bytes each (TODO 5)"
    assert lab.memory_bytes_grouped((3, 64), group_size=64) == 96 + 3 * 2, "one scale per row when the group is the row"
