"""Spec of mini_vllm.quant: grids, scales, packing, smoothing, dispatch and the cost model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mini_vllm.config import ModelConfig
from mini_vllm.kv_memory import GIB, LLAMA_3_8B, LLAMA_3_70B, MIXTRAL_8X7B, kv_page_size_bytes, num_gpu_blocks
from mini_vllm.quant import (
    SCHEMES,
    Int8Config,
    Int8LinearMethod,
    LinearBase,
    UnquantizedLinearMethod,
    dequantize,
    dequantize_grouped,
    get_quantization_config,
    kv_blocks_for_scheme,
    pack_int4,
    quant_linear,
    quantize_grouped,
    quantize_per_channel,
    quantize_per_tensor,
    quantized_nbytes,
    relative_error,
    smooth,
    unpack_int4,
    w8a8_matmul,
    weight_bytes,
)


def gaussian(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ int8


def test_per_channel_scale_is_row_absmax_over_127():
    w = np.array([[1.27, -2.54], [0.5, 0.25]], dtype=np.float32)
    q, s = quantize_per_channel(w)
    np.testing.assert_allclose(s, [0.02, 0.5 / 127], rtol=1e-6)
    assert q.dtype == np.int8
    assert q.tolist() == [[64, -127], [127, 64]]  # 63.5 -> 64 (ties to even), 1.27/0.02 -> 63.5


def test_all_zero_row_gets_scale_one_not_nan():
    w = np.zeros((2, 4), dtype=np.float32)
    w[1] = [1, -1, 0.5, 0]
    q, s = quantize_per_channel(w)
    assert s[0] == 1.0 and np.all(q[0] == 0)
    assert np.all(np.isfinite(dequantize(q, s)))
    qt, st_ = quantize_per_tensor(np.zeros((3, 3), dtype=np.float32))
    assert st_ == 1.0 and np.all(qt == 0)


def test_static_scale_saturates_instead_of_wrapping():
    # A calibrated scale of 0.01 covers |x| <= 1.27; runtime values beyond it must clip.
    q, s = quantize_per_tensor(np.array([1.276, -1.276, 5.0, 0.01], dtype=np.float32), scale=0.01)
    assert s == np.float32(0.01)
    assert q.tolist() == [127, -127, 127, 1]  # 127.6 rounds to 128: clipped, not -128


def test_per_channel_int8_error_on_gaussian_is_below_one_percent():
    w = gaussian((256, 512))
    q, s = quantize_per_channel(w)
    assert relative_error(w, dequantize(q, s)) < 0.01


def test_int8_with_scales_is_about_4x_smaller_than_fp32():
    w = gaussian((256, 512))
    q, s = quantize_per_channel(w)
    assert quantized_nbytes(q, s) == 256 * 512 + 256 * 4
    assert w.nbytes / quantized_nbytes(q, s) == pytest.approx(3.969, abs=1e-3)


def test_outlier_row_ruins_per_tensor_but_not_per_channel():
    w = gaussian((64, 128))
    w[3] *= 100
    rest = np.arange(64) != 3
    e_pc = relative_error(w[rest], dequantize(*quantize_per_channel(w))[rest])
    e_pt = relative_error(w[rest], dequantize(*quantize_per_tensor(w))[rest])
    assert e_pc < 0.01 and e_pt > 0.5


def test_quant_linear_equals_matmul_with_dequantized_weight():
    w, x = gaussian((32, 64)), gaussian((5, 64), seed=1)
    q, s = quantize_per_channel(w)
    bias = np.arange(32, dtype=np.float32)
    np.testing.assert_allclose(quant_linear(x, q, s, bias), x @ dequantize(q, s).T + bias, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ int4


@settings(max_examples=40, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 4), st.integers(1, 8).map(lambda n: 2 * n)),
              elements=st.integers(-8, 7)))
def test_pack_then_unpack_is_identity(q):
    packed = pack_int4(q)
    assert packed.dtype == np.uint8 and packed.shape == (q.shape[0], q.shape[1] // 2)
    np.testing.assert_array_equal(unpack_int4(packed), q)


def test_pack_puts_even_column_in_low_nibble_offset_by_8():
    assert pack_int4(np.array([[-7, 7]], dtype=np.int8)).tolist() == [[0xF1]]
    assert pack_int4(np.array([[0, -8]], dtype=np.int8)).tolist() == [[0x08]]


def test_pack_rejects_values_outside_int4():
    with pytest.raises(ValueError):
        pack_int4(np.array([[9, 0]], dtype=np.int8))


def test_grouped_scales_have_one_column_per_group_and_values_within_7():
    w = gaussian((8, 256))
    q, s = quantize_grouped(w, group_size=64)
    assert s.shape == (8, 4) and q.min() >= -7 and q.max() <= 7
    assert np.all(np.abs(q).reshape(8, 4, 64).max(axis=2) == 7)
    assert relative_error(w, dequantize_grouped(q, s, 64)) < 0.15


def test_grouped_rejects_ragged_groups():
    with pytest.raises(ValueError):
        quantize_grouped(gaussian((2, 100)), group_size=64)


# ------------------------------------------------------------------ W8A8 + SmoothQuant


def test_w8a8_integer_path_equals_fake_quant_in_float():
    x, w = gaussian((6, 32), seed=2), gaussian((10, 32), seed=3)
    xq, xs = quantize_per_tensor(x)
    wq, ws = quantize_per_channel(w)
    fake = dequantize(xq, xs) @ dequantize(wq, ws).T
    np.testing.assert_allclose(w8a8_matmul(x, w), fake, rtol=1e-5, atol=1e-5)


def test_w8a8_rejects_unknown_activation_granularity():
    with pytest.raises(ValueError):
        w8a8_matmul(gaussian((2, 4)), gaussian((3, 4)), act="per_group")


def test_smoothing_is_an_exact_reparametrization():
    x, w = gaussian((16, 32), seed=4).astype(np.float64), gaussian((8, 32), seed=5).astype(np.float64)
    x[:, 3] *= 50
    xh, wh, s = smooth(x, w, alpha=0.5)
    np.testing.assert_allclose(xh @ wh.T, x @ w.T, rtol=1e-12, atol=1e-10)
    assert s.shape == (32,) and s[3] == s.max()


def test_smoothing_leaves_zero_channels_alone():
    x, w = gaussian((4, 3)).astype(np.float64), gaussian((2, 3)).astype(np.float64)
    x[:, 1] = 0
    _, _, s = smooth(x, w)
    assert s[1] == 1.0


# ------------------------------------------------------------------ dispatch


def test_linear_without_config_is_unquantized():
    layer = LinearBase(4, 3)
    assert isinstance(layer.quant_method, UnquantizedLinearMethod)
    w = gaussian((3, 4))
    layer.load_weights(w)
    np.testing.assert_allclose(layer(np.eye(4, dtype=np.float32)), w.T, rtol=1e-6)


def test_int8_config_quantizes_on_load_and_skips_ignored_prefixes():
    cfg = get_quantization_config("int8")(ignored_layers=["lm_head"])
    assert isinstance(cfg, Int8Config) and cfg.get_name() == "int8"
    qkv = LinearBase(64, 32, cfg, prefix="model.layers.0.self_attn.qkv_proj")
    head = LinearBase(64, 32, cfg, prefix="lm_head")
    assert isinstance(qkv.quant_method, Int8LinearMethod)
    assert isinstance(head.quant_method, UnquantizedLinearMethod)
    w, x = gaussian((32, 64)), gaussian((4, 64), seed=1)
    qkv.load_weights(w)
    assert qkv.weight.dtype == np.int8 and qkv.weight_scale.shape == (32,)
    assert relative_error(x @ w.T, qkv(x)) < 0.01


def test_unknown_quantization_name_fails_loudly():
    with pytest.raises(ValueError, match="Invalid quantization method"):
        get_quantization_config("int3")


def test_load_rejects_wrong_shape():
    with pytest.raises(ValueError):
        LinearBase(4, 3).load_weights(np.zeros((4, 3)))


# ------------------------------------------------------------------ cost model


def test_llama_3_8b_parameter_count():
    assert LLAMA_3_8B.linear_params() == 6_979_321_856
    assert LLAMA_3_8B.linear_params() + LLAMA_3_8B.other_params() == 8_030_261_248
    assert LLAMA_3_8B.kv_bytes_per_token() == 131_072  # 128 KiB per token at fp16


def test_bytes_per_weight_of_each_scheme():
    assert SCHEMES["fp16"].bytes_per_weight() == 2.0
    assert SCHEMES["fp8_w8a8"].bytes_per_weight() == 1.0
    assert SCHEMES["int4_w4a16"].bytes_per_weight() == 0.5 + 2.5 / 128


def test_weight_bytes_keep_embeddings_at_16_bit():
    wb = {k: weight_bytes(LLAMA_3_8B, s) for k, s in SCHEMES.items()}
    assert wb == {"fp16": 16_060_522_496, "fp8_w8a8": 9_081_200_640, "int4_w4a16": 5_727_854_592}


def test_blocks_follow_vllm_arithmetic():
    fp16 = SCHEMES["fp16"]
    assert kv_page_size_bytes(LLAMA_3_8B) == 2 * 16 * 8 * 128 * 2
    expected = (int(80 * GIB * 0.9) - weight_bytes(LLAMA_3_8B, fp16) - 2 * GIB) // (65536 * 32)
    assert kv_blocks_for_scheme(LLAMA_3_8B, fp16, 80 * GIB, 0.9, 2 * GIB) == expected == 28_181
    assert kv_blocks_for_scheme(LLAMA_3_8B, fp16, 10 * GIB, 0.9) == 0


def test_fp8_kv_cache_doubles_blocks_up_to_rounding():
    fp16 = SCHEMES["fp16"]
    a = kv_blocks_for_scheme(LLAMA_3_8B, fp16, 80 * GIB, 0.9, 2 * GIB)
    b = kv_blocks_for_scheme(LLAMA_3_8B, fp16, 80 * GIB, 0.9, 2 * GIB, kv_dtype_bytes=1)
    assert b in (2 * a, 2 * a + 1)


def test_model_shape_from_hf_config_defaults():
    shape = ModelConfig.from_hf_config({"num_hidden_layers": 2, "hidden_size": 256, "intermediate_size": 512,
                                       "num_attention_heads": 4, "vocab_size": 512})
    assert shape.num_kv_heads == 4 and shape.head_dim == 64 and not shape.tie_word_embeddings


def test_llama_3_70b_on_one_80_gib_card():
    assert LLAMA_3_70B.linear_params() + LLAMA_3_70B.other_params() == 70_553_706_496
    assert LLAMA_3_70B.kv_bytes_per_token() == 327_680  # 320 KiB per token at fp16
    gib = {k: round(weight_bytes(LLAMA_3_70B, s) / GIB, 1) for k, s in SCHEMES.items()}
    assert gib == {"fp16": 131.4, "fp8_w8a8": 67.7, "int4_w4a16": 37.0}
    blocks = {k: kv_blocks_for_scheme(LLAMA_3_70B, s, 80 * GIB, 0.9, 2 * GIB) for k, s in SCHEMES.items()}
    assert blocks == {"fp16": 0, "fp8_w8a8": 477, "int4_w4a16": 6_750}
    assert kv_blocks_for_scheme(LLAMA_3_70B, SCHEMES["int4_w4a16"], 80 * GIB, 0.95, 2 * GIB, kv_dtype_bytes=1) == 15_140


def test_num_gpu_blocks_floors_per_layer_pages():
    page = kv_page_size_bytes(LLAMA_3_8B)  # 65,536 B: 2 x 16 tokens x 8 heads x 128 x 2 B
    assert num_gpu_blocks(page * 32 * 10, LLAMA_3_8B) == 10
    assert num_gpu_blocks(page * 32 * 10 - 1, LLAMA_3_8B) == 9
    assert num_gpu_blocks(-5, LLAMA_3_8B) == 0
    assert num_gpu_blocks(page * 32 * 10, LLAMA_3_8B, block_size=32) == 5


def test_mixtral_counts_every_expert_and_keeps_the_router_unquantized():
    assert MIXTRAL_8X7B.num_params() == 46_702_792_704
    dense = MIXTRAL_8X7B.replace(num_experts=0, num_experts_per_tok=0)
    assert MIXTRAL_8X7B.linear_params() - dense.linear_params() == 7 * 32 * 3 * 4096 * 14336
    assert MIXTRAL_8X7B.other_params() - dense.other_params() == 32 * 4096 * 8


def test_model_config_from_hf_config_names_a_missing_key():
    with pytest.raises(ValueError, match="hidden_size"):
        ModelConfig.from_hf_config({"num_attention_heads": 4, "vocab_size": 10})


def test_smoothquant_alpha_weights_activations_against_weights():
    from mini_vllm.quant import smoothquant_scales

    s = smoothquant_scales(np.array([16.0, 4.0]), np.array([1.0, 4.0]), alpha=0.75)
    np.testing.assert_allclose(s, [16.0 ** 0.75, 4.0 ** 0.75 / 4.0 ** 0.25])
