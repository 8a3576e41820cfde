"""Spec for lab 02-04: a Triton decode kernel over a paged cache equals SDPA over the
gathered cache, at fp16 tolerances.

Every test takes ``triton_device``: "cuda" on a GPU box, "cpu" when TRITON_INTERPRET=1
is set and torch + triton are installed (Triton's interpreter runs the kernel in numpy),
otherwise the test is skipped. Without the interpreter these count as ``gpu`` tests
(root conftest), so ``pytest -m "not gpu"`` never imports torch. Interpreter shapes are
tiny; the GPU-only tests at the bottom use real sizes.

Inputs come from ``make_paged_inputs``: physical blocks are shuffled, unused table
entries point at the null block 0, and block 0 is filled with NaN, so any read the
kernel fails to mask shows up as NaN.
"""
import pytest

ATOL = RTOL = 2e-3  # fp16 inputs and output, fp32 accumulation


def close(lab, out, q, k, v, t, lens):
    import torch

    ref = lab.sdpa_reference(q, k, v, t, lens)
    assert not torch.isnan(out).any(), "NaN in the output: the kernel read the poisoned null block (mask by seq_len)"
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=RTOL)


def test_gather_kv_follows_the_block_table(lab, triton_device):
    import torch

    k = torch.arange(5 * 4 * 1 * 1, dtype=torch.float32).reshape(5, 4, 1, 1)
    v = -k
    got_k, got_v = lab.gather_kv(k, v, torch.tensor([3, 1, 0], dtype=torch.int32), seq_len=6)
    assert got_k.flatten().tolist() == [12.0, 13.0, 14.0, 15.0, 4.0, 5.0], (
        "task 1: token t is row t % block_size of block block_table[t // block_size]"
    )
    assert torch.equal(got_v, -got_k)


@pytest.mark.parametrize("block_size", [16, 32])
def test_kernel_matches_sdpa_on_ragged_lengths(lab, triton_device, block_size):
    inputs = lab.make_paged_inputs([1, 17, 40], num_heads=4, num_kv_heads=2, head_dim=16,
                                   block_size=block_size, device=triton_device, seed=block_size)
    close(lab, lab.paged_decode_attention(*inputs), *inputs)


def test_kernel_shares_one_kv_head_across_a_query_group(lab, triton_device):
    inputs = lab.make_paged_inputs([5, 23], num_heads=4, num_kv_heads=1, head_dim=16, block_size=16,
                                   device=triton_device, seed=1)
    close(lab, lab.paged_decode_attention(*inputs), *inputs)


def test_tile_smaller_than_a_block_walks_each_block_in_pieces(lab, triton_device):
    inputs = lab.make_paged_inputs([33, 64], num_heads=2, num_kv_heads=2, head_dim=16, block_size=32,
                                   device=triton_device, seed=2)
    close(lab, lab.paged_decode_attention(*inputs, block_n=16), *inputs)


def test_splitting_the_context_and_merging_gives_the_same_answer(lab, triton_device):
    inputs = lab.make_paged_inputs([3, 70], num_heads=4, num_kv_heads=2, head_dim=16, block_size=16,
                                   device=triton_device, seed=6)
    out = lab.paged_decode_attention(*inputs, block_n=16, num_splits=3)
    close(lab, out, *inputs)  # request 0 (3 tokens) leaves two of its three splits empty


def test_single_token_context_returns_its_value_vector(lab, triton_device):
    import torch

    q, k, v, t, lens = lab.make_paged_inputs([1], num_heads=2, num_kv_heads=1, head_dim=16, block_size=16,
                                             device=triton_device, seed=3)
    out = lab.paged_decode_attention(q, k, v, t, lens)
    physical = int(t[0, 0])
    expected = v[physical, 0, 0].expand(2, 16)
    assert torch.equal(out[0], expected), "softmax over one key is 1: the output is that key's V row, exactly"


def test_null_block_padding_is_never_read(lab, triton_device):
    import torch

    q, k, v, t, lens = lab.make_paged_inputs([2, 48], num_heads=2, num_kv_heads=1, head_dim=16, block_size=16,
                                             device=triton_device, seed=4)
    assert t[0].tolist()[1:] == [0, 0], "request 0's table is padded with the null block"
    assert torch.isnan(k[0]).all(), "and block 0 is poisoned"
    close(lab, lab.paged_decode_attention(q, k, v, t, lens), q, k, v, t, lens)


def test_physical_placement_does_not_change_the_output(lab, triton_device):
    import torch

    q, k, v, t, lens = lab.make_paged_inputs([40], num_heads=2, num_kv_heads=1, head_dim=16, block_size=16,
                                             device=triton_device, seed=5, extra_blocks=4)
    a = lab.paged_decode_attention(q, k, v, t, lens)
    moved_k, moved_v = k.clone(), v.clone()
    new_table = torch.tensor([[7, 5, 6]], dtype=torch.int32, device=t.device)
    moved_k[new_table[0].long()] = k[t[0].long()]
    moved_v[new_table[0].long()] = v[t[0].long()]
    b = lab.paged_decode_attention(q, moved_k, moved_v, new_table, lens)
    assert torch.equal(a, b), "same tokens, other blocks: paging moves bytes, never changes the result"


# --- GPU only: real sizes and the benchmark ----------------------------------------------

def _cuda_only(device):
    if device != "cuda":
        pytest.skip("real-size shapes are for a GPU; the interpreter would take minutes")


@pytest.mark.gpu
@pytest.mark.parametrize("block_size", [16, 32])
def test_kernel_matches_sdpa_at_llama_8b_shapes(lab, triton_device, block_size):
    _cuda_only(triton_device)
    inputs = lab.make_paged_inputs([1, 15, 16, 17, 511, 1000, 2049, 4000], num_heads=32, num_kv_heads=8,
                                   head_dim=128, block_size=block_size, device="cuda", seed=block_size)
    close(lab, lab.paged_decode_attention(*inputs), *inputs)


@pytest.mark.gpu
def test_benchmark_against_copy_bandwidth_and_vllm(lab, triton_device, figures):
    _cuda_only(triton_device)
    result = lab.benchmark()
    print("\n" + lab.format_benchmark(result))
    figures("p02_lab04_kernel_gbps", round(result["kernel_gbps"]))
    figures("p02_lab04_copy_gbps", round(result["copy_gbps"]))
    figures("p02_lab04_fraction_of_copy", round(result["fraction_of_copy"], 3))
    figures("p02_lab04_vllm_triton_gbps",
            None if result["vllm_triton_gbps"] is None else round(result["vllm_triton_gbps"]))
    if result.get("vllm_max_abs_diff") is not None:
        assert result["vllm_max_abs_diff"] < 1e-2, "vLLM's kernel and ours disagree on the same inputs"
    assert result["fraction_of_copy"] >= 0.7, "a decode step reads the whole context once: aim for copy speed"
