"""Lab 00-02 spec: the KV-cache formula on Llama-3, exact to the byte."""
from course.labkit import load_lab

_given = load_lab(__file__)
GiB, MiB, KiB = _given.GiB, _given.MiB, _given.KiB
L8, L70 = _given.LLAMA3_8B, _given.LLAMA3_70B


def per_token(lab, shape, dtype_bytes=2, kv_heads=None):
    return lab.kv_bytes_per_token(shape.num_layers, kv_heads or shape.num_kv_heads, shape.head_dim, dtype_bytes)


def test_llama3_8b_per_token(lab):
    assert per_token(lab, L8) == 131_072 == 128 * KiB, "2 x 32 layers x 8 KV heads x 128 dims x 2 bytes"


def test_llama3_8b_per_2k_sequence(lab):
    assert lab.kv_bytes_per_seq(per_token(lab, L8), 2048) == 256 * MiB


def test_llama3_8b_weights_are_about_15_gib(lab):
    w = lab.weight_bytes(L8.num_params, 2)
    assert w == 16_060_000_000
    assert round(w / GiB, 2) == 14.96, "8.03e9 params x 2 bytes; the README rounds up to 16 GiB for headroom"


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
    w = lab.weight_bytes(L70.num_params, 2)
    assert w == 141_200_000_000, "70B in fp16 needs ~141 GB for weights alone"
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
    assert lab.max_concurrent_seqs(8 * 80 * GiB, lab.weight_bytes(L70.num_params, 2), seq) == 203, (
        "EXERCISES.md: 640 GiB of HBM, 141.2 GB of weights, 2.5 GiB per 8k sequence (activations ignored)"
    )
    assert round(lab.weight_bytes(L70.num_params, 2) / GiB, 1) == 131.5


def test_memory_for_50_sequences_in_flight(lab):
    assert 50 * lab.kv_bytes_per_seq(per_token(lab, L8), 2048) == 12.5 * GiB, "Little's law example, at 2k tokens each"
