"""Lab 00-02 spec: the KV-cache formula on Llama-3, exact to the byte."""
from mini_vllm.kv_memory import GIB as GiB
from mini_vllm.kv_memory import KIB as KiB
from mini_vllm.kv_memory import LLAMA_3_8B as L8
from mini_vllm.kv_memory import LLAMA_3_70B as L70
from mini_vllm.kv_memory import MIB as MiB


def per_token(lab, shape, dtype_bytes=2, kv_heads=None):
    return lab.kv_bytes_per_token(shape.num_layers, kv_heads or shape.num_kv_heads, shape.head_dim, dtype_bytes)


def test_llama3_8b_per_token(lab):
    assert per_token(lab, L8) == 131_072 == 128 * KiB, "2 x 32 layers x 8 KV heads x 128 dims x 2 bytes"


def test_llama3_8b_per_2k_sequence(lab):
    assert lab.kv_bytes_per_seq(per_token(lab, L8), 2048) == 256 * MiB


def test_llama3_8b_weights_are_about_15_gib(lab):
    w = lab.weight_bytes(L8.num_params(), 2)
    assert w == 16_060_522_496
    assert round(w / GiB, 2) == 14.96, "8,030,261,248 params x 2 bytes; the README rounds up to 16 GiB for headroom"


def test_llama3_8b_concurrency_on_24_gib(lab):
    seq = lab.kv_bytes_per_seq(per_token(lab, L8), 2048)
    assert lab.max_concurrent_seqs(24 * GiB, 16 * GiB, seq) == 32, "8 GiB free / 256 MiB per sequence"


def test_fp8_kv_doubles_concurrency(lab):
    assert per_token(lab, L8, dtype_bytes=1) == 64 * KiB
    seq = lab.kv_bytes_per_seq(per_token(lab, L8, dtype_bytes=1), 2048)
    assert seq == 128 * MiB
    assert lab.max_concurrent_seqs(24 * GiB, 16 * GiB, seq) == 64, "halving dtype_bytes halves every sequence"


def test_gqa_saves_4x_vs_mha(lab):
    mha = per_token(lab, L8, kv_heads=32)
    assert mha == 512 * KiB and mha == 4 * per_token(lab, L8), "32 KV heads (MHA) vs 8 (GQA)"
    seq = lab.kv_bytes_per_seq(mha, 2048)
    assert lab.max_concurrent_seqs(24 * GiB, 16 * GiB, seq) == 8


def test_llama3_70b_per_token_and_8k_sequence(lab):
    tok = per_token(lab, L70)
    assert tok == 327_680 == 320 * KiB
    assert lab.kv_bytes_per_seq(tok, 8192) == 2_684_354_560 and 2_684_354_560 / GiB == 2.5


def test_no_room_returns_zero(lab):
    w = lab.weight_bytes(L70.num_params(), 2)
    assert w == 141_107_412_992, "70B in fp16 needs ~141 GB for weights alone"
    seq = lab.kv_bytes_per_seq(per_token(lab, L70), 8192)
    assert lab.max_concurrent_seqs(80 * GiB, w, seq) == 0, "weights larger than the GPU: 0 users, not a negative number"
    assert lab.max_concurrent_seqs(16 * GiB, 16 * GiB, seq) == 0, "exactly full: still 0"


def test_block_rounding_rounds_up_to_whole_blocks(lab):
    tok = per_token(lab, L8)
    assert lab.kv_bytes_per_seq(tok, 2048, block_size=16) == 2048 * tok, "2048 is 128 full blocks: no waste"
    padded = lab.kv_bytes_per_seq(tok, 2050, block_size=16)
    assert padded == 2064 * tok, "2050 tokens need 129 blocks of 16 = 2064 slots"
    assert round(100 * (2064 - 2050) / 2064, 2) == 0.68, "14 empty slots: under 1% waste"
    assert lab.kv_bytes_per_seq(tok, 1, block_size=16) == 16 * tok, "one token still takes a whole block"


def test_capacity_for_200_users_at_4k(lab):
    need = 200 * lab.kv_bytes_per_seq(per_token(lab, L8), 4096)
    assert need == 100 * GiB, "200 x 4096 tokens x 128 KiB: more than any single GPU holds"


def test_one_block_of_one_layer_is_64_kib(lab):
    one_layer = lab.kv_bytes_per_token(1, L8.num_kv_heads, L8.head_dim, 2)
    assert lab.kv_bytes_per_seq(one_layer, 16, block_size=16) == 64 * KiB, (
        "upstream's AttentionSpec.real_page_size_bytes: one 16-token block of one layer"
    )


def test_llama3_8b_at_8k_context(lab):
    seq = lab.kv_bytes_per_seq(per_token(lab, L8), 8192)
    assert seq == 1 * GiB
    assert lab.max_concurrent_seqs(24 * GiB, 16 * GiB, seq) == 8, "4x the context, a quarter of the users"


def test_70b_on_eight_80_gib_gpus(lab):
    seq = lab.kv_bytes_per_seq(per_token(lab, L70), 8192)
    assert lab.max_concurrent_seqs(8 * 80 * GiB, lab.weight_bytes(L70.num_params(), 2), seq) == 203, (
        "EXERCISES.md: 640 GiB of HBM, 141.1 GB of weights, 2.5 GiB per 8k sequence (activations ignored)"
    )
    assert round(lab.weight_bytes(L70.num_params(), 2) / GiB, 1) == 131.4


def test_memory_for_50_sequences_in_flight(lab):
    assert 50 * lab.kv_bytes_per_seq(per_token(lab, L8), 2048) == 12.5 * GiB, "Little's law example, at 2k tokens each"


def test_each_factor_of_the_per_token_formula_counts(lab):
    base = lab.kv_bytes_per_token(2, 3, 5, 7)
    assert base == 2 * 2 * 3 * 5 * 7, "README task 1: 2 (K and V) x layers x KV heads x head_dim x dtype bytes"
    assert lab.kv_bytes_per_token(4, 3, 5, 7) == 2 * base, "doubling the layers doubles the bytes"
    assert lab.kv_bytes_per_token(2, 6, 5, 7) == 2 * base, "doubling the KV heads doubles the bytes"
    assert lab.kv_bytes_per_token(2, 3, 10, 7) == 2 * base, "doubling head_dim doubles the bytes"
    assert lab.kv_bytes_per_token(2, 3, 5, 14) == 2 * base, "doubling dtype_bytes doubles the bytes"


def test_block_rounding_at_other_block_sizes(lab):
    assert lab.kv_bytes_per_seq(10, 17, block_size=16) == 320, "README task 2: 17 tokens need 2 blocks of 16"
    assert lab.kv_bytes_per_seq(10, 32, block_size=16) == 320, "32 tokens fill 2 blocks exactly: no extra block"
    assert lab.kv_bytes_per_seq(10, 33, block_size=32) == 640, "33 tokens need 2 blocks of 32"
    assert lab.kv_bytes_per_seq(10, 7, block_size=8) == 80 and lab.kv_bytes_per_seq(10, 0, block_size=8) == 0
    assert lab.kv_bytes_per_seq(3, 5) == 15, "block_size=1 (the default): no rounding at all"


def test_fractional_bytes_round_up_to_whole_bytes(lab):
    assert lab.weight_bytes(7, 0.5) == 4, "README task 3: 7 four-bit weights fill 3.5 bytes: a started byte is a byte"
    assert lab.weight_bytes(5, 0.5) == 3, "2.5 bytes is 3 bytes (not 2, as rounding half to even would give)"
    assert lab.weight_bytes(8, 0.5) == 4 and lab.weight_bytes(L8.num_params(), 0.5) == 4_015_130_624
    assert isinstance(lab.weight_bytes(7, 0.5), int), "bytes are an int"


def test_concurrency_floors_and_is_an_int(lab):
    got = lab.max_concurrent_seqs(1000, 100, 300)
    assert got == 3 and isinstance(got, int), "README task 4: 900 free bytes hold 3 sequences of 300, not 3.0"
    assert lab.max_concurrent_seqs(1000, 101, 300) == 2, "one byte short of the third sequence: 2"
    assert lab.max_concurrent_seqs(1000, 999, 300) == 0, "a little room is still no whole sequence"
    assert lab.max_concurrent_seqs(100, 1000, 300) == 0, "weights larger than the GPU: 0, never negative"


def test_per_token_bytes_agree_with_the_engine_model_config(lab):
    for model in (L8, L70):
        for dtype_bytes in (1, 2, 4):
            mine = lab.kv_bytes_per_token(model.num_layers, model.num_kv_heads, model.head_dim, dtype_bytes)
            assert mine == model.kv_bytes_per_token(dtype_bytes), (
                f"README task 1: {model.name} at {dtype_bytes} bytes: yours {mine}, ModelConfig {model.kv_bytes_per_token(dtype_bytes)}"
            )
