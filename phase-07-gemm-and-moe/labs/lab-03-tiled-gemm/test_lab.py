"""Lab 07-03 spec: tiling is exact (ragged edges included) and the traffic model's numbers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# ---------------------------------------------------------------- TODO 1: tiled_gemm


def test_tiled_equals_matmul_divisible(lab):
    rng = np.random.default_rng(0)
    a = rng.integers(-9, 10, (64, 48))
    b = rng.integers(-9, 10, (48, 32))
    np.testing.assert_array_equal(lab.tiled_gemm(a, b, 16, 16, 16), a @ b)


def test_tiled_equals_matmul_ragged(lab):
    """37 x 23 x 19 with tiles 8 x 5 x 4: every edge tile along every axis is partial."""
    rng = np.random.default_rng(1)
    a = rng.integers(-9, 10, (37, 19))
    b = rng.integers(-9, 10, (19, 23))
    np.testing.assert_array_equal(lab.tiled_gemm(a, b, 8, 5, 4), a @ b,
                                  err_msg="edge tiles: clip each slice end with min(start + tile, size)")
    af, bf = a / 7.0, b / 3.0
    np.testing.assert_allclose(lab.tiled_gemm(af, bf, 8, 5, 4), af @ bf, rtol=1e-12)


def test_tiles_larger_than_the_matrix_still_work(lab):
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(lab.tiled_gemm(a, b, 128, 128, 64), a @ b)


@settings(max_examples=20, deadline=None)
@given(M=st.integers(1, 20), N=st.integers(1, 20), K=st.integers(1, 20),
       tm=st.integers(1, 8), tn=st.integers(1, 8), tk=st.integers(1, 8), seed=st.integers(0, 999))
def test_tiled_equals_matmul_for_any_shape_and_tiles(lab, M, N, K, tm, tn, tk, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-5, 6, (M, K))
    b = rng.integers(-5, 6, (K, N))
    np.testing.assert_array_equal(lab.tiled_gemm(a, b, tm, tn, tk), a @ b)


# ---------------------------------------------------------------- TODO 2-4: traffic


def test_traffic_formulas(lab):
    assert lab.naive_traffic(1024, 1024, 1024) == 2_147_483_648, "2 * M * N * K"
    assert lab.tiled_traffic(1024, 1024, 1024, 128, 128) == 16_777_216, "M*K*ceil(N/tn) + K*N*ceil(M/tm)"


def test_tile_size_one_is_the_naive_algorithm(lab):
    assert lab.tiled_traffic(37, 23, 19, 1, 1) == lab.naive_traffic(37, 23, 19)
    assert lab.reuse_factor(37, 23, 19, 1, 1) == 1.0


def test_ragged_tiles_are_charged_as_whole_tiles(lab):
    # 100 = 64 + 36: two tiles per axis, so each panel is read twice, as with 50-wide tiles.
    assert lab.tiled_traffic(100, 100, 100, 64, 64) == 40_000
    assert lab.reuse_factor(100, 100, 100, 64, 64) == 50.0, "ceil(), not exact division"


def test_bigger_tiles_mean_less_traffic(lab):
    loads = [lab.tiled_traffic(4096, 4096, 4096, t, t) for t in (16, 32, 64, 128, 256)]
    assert loads == sorted(loads, reverse=True) and len(set(loads)) == 5


def test_reuse_factor_is_the_harmonic_tile_size(lab):
    assert lab.reuse_factor(1024, 1024, 1024, 128, 128) == 128.0
    assert round(lab.reuse_factor(4096, 4096, 4096, 256, 16), 2) == 30.12, "2 / (1/256 + 1/16), not sqrt(256*16)"
    for tm, tn in [(64, 32), (128, 16), (32, 256)]:
        assert lab.reuse_factor(4096, 4096, 512, tm, tn) == pytest.approx(2 / (1 / tm + 1 / tn))


def test_square_tiles_win_at_equal_area(lab):
    shapes = [(16, 256), (32, 128), (64, 64), (128, 32), (256, 16)]  # all 4096 outputs per tile
    reuse = {s: lab.reuse_factor(4096, 4096, 4096, *s) for s in shapes}
    assert max(reuse, key=reuse.get) == (64, 64)
    assert [round(reuse[s], 2) for s in shapes] == [30.12, 51.2, 64.0, 51.2, 30.12]


def test_decode_shape_has_no_reuse_to_harvest(lab):
    """M = 1 (one decode token): a tile cannot be taller than the matrix, so reuse < 2."""
    for t in (16, 64, 128, 256, 4096):
        assert lab.reuse_factor(1, 4096, 4096, t, t) < 2.0
    assert round(lab.reuse_factor(1, 4096, 4096, 128, 128), 4) == 1.9845


def test_batching_decode_rows_is_what_raises_reuse(lab):
    assert [round(lab.reuse_factor(m, 4096, 4096, 128, 128), 2) for m in (1, 8, 32, 128)] == [1.98, 15.06, 51.2, 128.0]


# ---------------------------------------------------------------- boundaries the README's examples miss


def test_a_ragged_k_slice_is_not_dropped(lab):
    """K = 10 with tile_k = 4: slices 0:4, 4:8 and the partial 8:10 all count."""
    a = np.ones((2, 10), dtype=np.int64)
    b = np.ones((10, 3), dtype=np.int64)
    np.testing.assert_array_equal(lab.tiled_gemm(a, b, 2, 3, 4), np.full((2, 3), 10),
                                  err_msg="sum over every K slice, the last partial one included (TODO 1)")


def test_every_k_slice_is_accumulated_not_overwritten(lab):
    a = np.arange(12).reshape(2, 6)
    b = np.arange(18).reshape(6, 3)
    np.testing.assert_array_equal(lab.tiled_gemm(a, b, 2, 3, 2), a @ b,
                                  err_msg="add each K slice's product into the tile's accumulator (TODO 1)")


def test_float_result_keeps_the_input_dtype(lab):
    a = np.full((3, 5), 0.5, dtype=np.float32)
    b = np.full((5, 2), 0.25, dtype=np.float32)
    c = lab.tiled_gemm(a, b, 2, 2, 2)
    assert c.dtype == np.float32 and c.shape == (3, 2)
    np.testing.assert_allclose(c, 0.625)


def test_traffic_is_not_symmetric_in_the_two_tile_sides(lab):
    # M = 64, N = 256, K = 10, tiles 32 x 64: A is read ceil(256/64) = 4 times, B ceil(64/32) = 2 times.
    assert lab.tiled_traffic(64, 256, 10, 32, 64) == 64 * 10 * 4 + 10 * 256 * 2 == 7_680, \
        "tile_n decides how often A is read, tile_m how often B is (TODO 3)"
    assert lab.tiled_traffic(256, 64, 10, 64, 32) == 7_680, "transposing the problem and the tile gives the same count"
    assert lab.tiled_traffic(64, 256, 10, 64, 32) == 64 * 10 * 8 + 10 * 256 * 1 == 7_680
    assert lab.tiled_traffic(64, 256, 10, 16, 128) == 64 * 10 * 2 + 10 * 256 * 4 == 11_520


def test_a_small_remainder_still_costs_a_whole_tile(lab):
    # 80 = 64 + 16: the 16-row remainder is a quarter tile, and it still reads whole panels.
    assert lab.tiled_traffic(80, 80, 80, 64, 64) == 2 * 80 * 80 * 2 == 25_600, "ceil(80 / 64) = 2, not round() = 1 (TODO 3)"
    assert lab.reuse_factor(80, 80, 80, 64, 64) == 40.0


def test_tiles_that_divide_evenly_are_not_charged_extra(lab):
    assert lab.tiled_traffic(128, 128, 8, 64, 64) == 2 * 128 * 8 * 2 == 4_096, "128 / 64 = 2 tiles exactly, not 3"
    assert lab.reuse_factor(128, 128, 8, 64, 64) == 64.0


def test_naive_traffic_counts_both_operands(lab):
    assert lab.naive_traffic(3, 5, 7) == 210, "each of 15 outputs reads 7 elements of A and 7 of B (TODO 2)"
    assert lab.naive_traffic(1, 1, 1) == 2
