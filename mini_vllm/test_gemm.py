"""Spec for mini_vllm.gemm: tiling is exact, and the traffic model's numbers."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_vllm.gemm import (
    H100_SXM,
    arithmetic_intensity,
    best_square_tile,
    best_tile,
    harmonic_mean,
    naive_traffic,
    reuse_factor,
    tile_smem_bytes,
    tiled_gemm,
    tiled_traffic,
)


@settings(max_examples=30, deadline=None)
@given(
    M=st.integers(1, 23), N=st.integers(1, 23), K=st.integers(1, 23),
    tm=st.integers(1, 9), tn=st.integers(1, 9), tk=st.integers(1, 9), seed=st.integers(0, 1000),
)
def test_tiled_gemm_is_exact_on_integers(M, N, K, tm, tn, tk, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-5, 6, (M, K))
    b = rng.integers(-5, 6, (K, N))
    np.testing.assert_array_equal(tiled_gemm(a, b, tm, tn, tk), a @ b)


def test_tiled_gemm_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        tiled_gemm(np.ones((2, 3)), np.ones((4, 2)), 2, 2, 2)


def test_traffic_for_1024_cubed_with_128_square_tiles():
    assert naive_traffic(1024, 1024, 1024) == 2_147_483_648
    assert tiled_traffic(1024, 1024, 1024, 128, 128) == 16_777_216
    assert reuse_factor(1024, 1024, 1024, 128, 128) == 128.0


def test_reuse_is_the_harmonic_mean_when_tiles_divide():
    for tm, tn in [(128, 128), (256, 16), (64, 32)]:
        assert math.isclose(reuse_factor(4096, 4096, 512, tm, tn), harmonic_mean(tm, tn))
    assert round(harmonic_mean(256, 16), 2) == 30.12


def test_decode_shape_reuse_stays_below_two():
    for t in (16, 64, 128, 256, 4096):
        assert reuse_factor(1, 4096, 4096, t, t) < 2.0
    assert round(reuse_factor(1, 4096, 4096, 128, 128), 4) == 1.9845


def test_decode_intensity_is_about_one_flop_per_byte_in_bf16():
    assert round(arithmetic_intensity(1, 4096, 4096, 128, 128, dtype_bytes=2), 3) == 0.992
    assert round(arithmetic_intensity(4096, 4096, 4096, 128, 128, dtype_bytes=2), 1) == 63.0


def test_smem_budget_picks_128_square_tiles_at_four_stages():
    assert tile_smem_bytes(128, 128, 64, 2, num_stages=4) == 131_072
    assert best_square_tile(227 * 1024, tile_k=64, dtype_bytes=2, num_stages=4) == 128
    assert best_square_tile(227 * 1024, tile_k=64, dtype_bytes=2, num_stages=1) == 512


def test_smem_budget_at_four_stages_prefers_a_128_by_256_rectangle():
    assert best_tile(227 * 1024, tile_k=64, dtype_bytes=2, num_stages=4) == (128, 256)
    assert tile_smem_bytes(128, 256, 64, 2, num_stages=4) == 196_608
    assert round(harmonic_mean(128, 256), 2) == 170.67


def test_h100_ridge_point_is_about_295_flops_per_byte():
    assert round(H100_SXM.ridge_point) == 295


def test_partial_edge_tiles_are_loaded_too():
    # 100 x 100 output in 64 x 64 tiles: 2 tiles per side, the second one partial.
    assert tiled_traffic(100, 100, 10, 64, 64) == 100 * 10 * 2 + 10 * 100 * 2
    assert tiled_traffic(128, 128, 10, 64, 64) == 128 * 10 * 2 + 10 * 128 * 2
