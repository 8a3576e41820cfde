"""Lab 07-02 spec: the cost model's predictions, the kernel categorizer, and (GPU) a real profile."""
import json
from pathlib import Path

import pytest

from course.lab_support.phase_07 import step_kernels
from mini_vllm.config import ModelConfig
from mini_vllm.gemm import H100_SXM, GpuSpec

# ---------------------------------------------------------------- TODO 1-2


def test_expected_active_experts(lab):
    assert lab.expected_active_experts(8, 2, 1) == 2.0, "one token touches exactly top_k experts"
    assert round(lab.expected_active_experts(8, 2, 8), 3) == 7.199, "8 * (1 - (6/8)**8)"
    assert round(lab.expected_active_experts(8, 2, 64), 3) == 8.0


def test_kernel_time_is_the_floor_plus_the_slower_roofline(lab):
    memory_bound = lab.Kernel("x", "copy", flops=0, bytes=3.35e9)  # 1 ms of HBM traffic
    compute_bound = lab.Kernel("x", "gemm", flops=2 * 989e9, bytes=3.35e9)  # 2 ms of tensor cores
    assert lab.kernel_time(memory_bound, H100_SXM) == pytest.approx(1.003e-3)
    assert lab.kernel_time(compute_bound, H100_SXM) == pytest.approx(2.003e-3)
    assert lab.kernel_time(lab.Kernel("x", "tiny", 0, 0), H100_SXM) == pytest.approx(3e-6), "nothing is free"


# ---------------------------------------------------------------- TODO 3


def test_moe_block_kernels_follow_fused_experts_launch_order(lab):
    names = [k.name for k in lab.moe_block_kernels(lab.TINY_MOE, 8)]
    assert names == ["gate", "topk_softmax", "moe_align_block_size", "fused_moe_kernel_w13",
                     "silu_and_mul", "fused_moe_kernel_w2", "moe_sum"]
    cats = [k.category for k in lab.moe_block_kernels(lab.TINY_MOE, 8)]
    assert cats == ["gemm", "router", "permute", "experts", "experts", "experts", "permute"]


def test_one_token_skips_the_align_kernel(lab):
    names = [k.name for k in lab.moe_block_kernels(lab.TINY_MOE, 1)]
    assert "moe_align_block_size" not in names, "1 * top_k * 4 <= 8 experts: vLLM gives each slot its own block"
    assert len(names) == 6


def test_align_threshold_scales_with_experts_over_top_k(lab):
    wide = ModelConfig(hidden_size=2048, intermediate_size=768, num_experts=128, num_experts_per_tok=8, num_layers=48,
                       num_heads=32, num_kv_heads=4, head_dim=128, vocab_size=151936)  # 128 experts, top-8
    has_align = [any(k.name == "moe_align_block_size" for k in lab.moe_block_kernels(wide, t)) for t in (1, 4, 5)]
    assert has_align == [False, False, True], "skipped while num_tokens * 8 * 4 <= 128"


def test_expert_gemms_read_only_the_active_experts_weights(lab):
    w13, _, w2 = [k for k in lab.moe_block_kernels(lab.MIXTRAL_8X7B, 1) if k.category == "experts"]
    assert round(w13.bytes / 1e6, 1) == 469.9, "2 active experts * 2 * 14336 * 4096 * 2 bytes, plus activations"
    assert round(w2.bytes / 1e6, 1) == 235.0
    assert w13.flops == 2 * 1 * 2 * 2 * 14336 * 4096
    at_8 = [k for k in lab.moe_block_kernels(lab.MIXTRAL_8X7B, 8) if k.name.startswith("fused_moe_kernel")]
    assert round(sum(k.bytes for k in at_8) / 1e9, 2) == 2.54, "7.199 experts' weights per layer at 8 tokens"


# ---------------------------------------------------------------- TODO 4


def test_tiny_model_prediction_is_kernel_floor_bound(lab):
    shares = lab.predict_breakdown(lab.TINY_MOE, num_tokens=8, context_len=32)
    assert len(step_kernels(lab.TINY_MOE, 8, 32, lab.moe_block_kernels)) == 32
    assert {c: round(v, 3) for c, v in shares.items()} == {
        "experts": 0.215, "permute": 0.12, "router": 0.06, "attention": 0.121, "gemm": 0.214, "other": 0.271}


def test_mixtral_prediction_is_expert_bound(lab):
    shares = lab.predict_breakdown(lab.MIXTRAL_8X7B, num_tokens=8, context_len=1024)
    assert len(step_kernels(lab.MIXTRAL_8X7B, 8, 1024, lab.moe_block_kernels)) == 452
    assert {c: round(v, 3) for c, v in shares.items()} == {
        "experts": 0.915, "permute": 0.007, "router": 0.004, "attention": 0.019, "gemm": 0.044, "other": 0.011}
    assert sum(shares.values()) == pytest.approx(1.0)


def test_bigger_batches_shift_time_toward_attention(lab):
    attn = [round(lab.predict_breakdown(lab.MIXTRAL_8X7B, t, 1024)["attention"], 3) for t in (1, 8, 64, 256)]
    assert attn == [0.026, 0.019, 0.086, 0.258]


# ---------------------------------------------------------------- TODO 5-6

KERNEL_NAMES = {
    "fused_moe_kernel": "experts",
    "void vllm::act_and_mul_kernel<c10::BFloat16, __nv_bfloat162, &vllm::silu_kernel, true>(c10::BFloat16*, int)": "experts",
    "void vllm::moe::moe_align_block_size_small_batch_expert_kernel<int, 32>(int const*, int*, int*)": "permute",
    "void vllm::moe::count_and_sort_expert_tokens_kernel<int>(int const*, int*, int*)": "permute",
    "void vllm::moe::moe_sum_kernel<c10::BFloat16, 2>(c10::BFloat16*, c10::BFloat16 const*, int)": "permute",
    "void vllm::moe::topkGating<4, 8, 4, 16, 32, int, __nv_bfloat16>(__nv_bfloat16 const*, float*)": "router",
    "void vllm::moe::moeSoftmax<256, float>(float const*, bool const*, float*, int)": "router",
    "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<...>>>(...)": "attention",
    "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, 0>(...)": "attention",
    "kernel_unified_attention_2d": "attention",
    "nvjet_tst_64x8_64x16_4x1_v_bz_TNT": "gemm",
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64_warpgroupsize1x1x1": "gemm",
    "void vllm::fused_add_rms_norm_kernel<c10::BFloat16, 8>(c10::BFloat16*, long)": "other",
    "void vllm::rotary_embedding_kernel<c10::BFloat16, true>(long const*)": "other",
    "Memcpy HtoD (Pageable -> Device)": "other",
    "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<int>>(int, float)": "other",
}


@pytest.mark.parametrize("name", sorted(KERNEL_NAMES))
def test_categorize_kernel_on_real_kernel_names(lab, name):
    assert lab.categorize_kernel(name) == KERNEL_NAMES[name]


def test_summarize_profile_gives_time_shares(lab):
    kernels = [("fused_moe_kernel", 40.0), ("fused_moe_kernel", 10.0), ("void vllm::moe::moe_sum_kernel<float, 2>", 5.0),
               ("void vllm::moe::topkGating<4>", 5.0), ("flash_fwd_splitkv_kernel", 20.0),
               ("nvjet_tst_64x8", 15.0), ("Memset (Device)", 5.0)]
    shares = lab.summarize_profile(kernels)
    assert shares == pytest.approx({"experts": 0.5, "permute": 0.05, "router": 0.05, "attention": 0.2,
                                    "gemm": 0.15, "other": 0.05})


def test_summarize_profile_rejects_an_empty_profile(lab):
    with pytest.raises(ValueError):
        lab.summarize_profile([])


# ---------------------------------------------------------------- boundaries the worked examples miss


def test_active_experts_at_the_edges(lab):
    assert lab.expected_active_experts(8, 8, 3) == 8.0, "top_k = E: every expert is always active (TODO 1)"
    assert lab.expected_active_experts(8, 2, 0) == 0.0, "no tokens wake no experts"
    assert lab.expected_active_experts(64, 8, 4) == pytest.approx(26.484375), \
        "64 experts, top-8, 4 tokens: 64 * (1 - (56/64)**4), not min(T * k, E) = 32"


def test_kernel_time_takes_the_slower_bound_not_the_sum(lab):
    both = lab.Kernel("x", "balanced", flops=989e9, bytes=3.35e9)  # 1 ms of each
    assert lab.kernel_time(both, H100_SXM) == pytest.approx(1.003e-3), "compute and traffic overlap: max, not sum (TODO 2)"


def test_dtype_bytes_scales_the_moe_blocks_traffic(lab):
    half = {k.name: k.bytes for k in lab.moe_block_kernels(lab.MIXTRAL_8X7B, 1, dtype_bytes=1)}
    full = {k.name: k.bytes for k in lab.moe_block_kernels(lab.MIXTRAL_8X7B, 1)}
    assert half["fused_moe_kernel_w13"] == full["fused_moe_kernel_w13"] / 2 == 234_942_464, \
        "fp8 experts read half the bytes: use the dtype_bytes argument (TODO 3)"
    assert (half["topk_softmax"], full["topk_softmax"]) == (24, 32), "the ids and float32 weights do not shrink"


def test_align_kernel_runs_once_slots_outnumber_a_quarter_of_the_experts(lab):
    names = [k.name for k in lab.moe_block_kernels(lab.TINY_MOE, 2)]
    assert "moe_align_block_size" in names and len(names) == 7, "2 * 2 * 4 = 16 > 8 experts: align (TODO 3)"


def test_predict_passes_gpu_and_dtype_through(lab):
    fp8 = lab.predict_breakdown(lab.MIXTRAL_8X7B, num_tokens=8, context_len=1024, dtype_bytes=1)
    assert {c: round(v, 3) for c, v in fp8.items()} == {
        "experts": 0.881, "permute": 0.014, "router": 0.007, "attention": 0.025, "gemm": 0.052, "other": 0.021}, \
        "dtype_bytes reaches every kernel of the step (TODO 4)"
    slow = GpuSpec("slow", peak_flops=1e12, hbm_bytes_per_s=1e12, kernel_floor_s=1e-6)
    shares = lab.predict_breakdown(lab.TINY_MOE, 8, 32, gpu=slow)
    assert round(shares["experts"], 3) == 0.471 and round(shares["gemm"], 3) == 0.233, "price kernels on the gpu given"


def test_categorize_is_case_insensitive_and_defaults_to_other(lab):
    assert lab.categorize_kernel("FUSED_MOE_KERNEL_GPTQ") == "experts"
    assert lab.categorize_kernel("void vllm::moe::TopKGating<8>") == "router"
    assert lab.categorize_kernel("") == "other"
    assert lab.categorize_kernel("void at::native::reduce_kernel<512, 1>") == "other"


def test_summarize_profile_rejects_a_profile_of_zero_time(lab):
    with pytest.raises(ValueError):
        lab.summarize_profile([("fused_moe_kernel", 0.0), ("nvjet_tst", 0.0)])
    shares = lab.summarize_profile([("nvjet_tst", 3.0)])
    assert shares == {"experts": 0.0, "permute": 0.0, "router": 0.0, "attention": 0.0, "gemm": 1.0, "other": 0.0}, \
        "every category appears, unused ones at 0 (TODO 6)"


def test_summarize_profile_weights_by_time_not_by_count(lab):
    shares = lab.summarize_profile([("fused_moe_kernel", 9.0), ("nvjet_tst", 1.0), ("nvjet_tst", 0.0)])
    assert shares["experts"] == pytest.approx(0.9), "shares of microseconds, not of launches (TODO 6)"


# ---------------------------------------------------------------- GPU: a real vLLM 0.22.1 profile

_PROFILE_CHILD = r'''
import json, sys, time
spec = json.loads(sys.stdin.read())
t0 = time.perf_counter()
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from vllm import LLM, SamplingParams

llm = LLM(model=spec["model"], **spec["llm_kwargs"])
t1 = time.perf_counter()
sp = SamplingParams(max_tokens=spec["max_tokens"], temperature=0.0, ignore_eos=True)
prompts = spec["prompts"]
llm.generate(prompts, sp, use_tqdm=False)  # warm-up: Triton JIT compiles, caches fill
torch.cuda.synchronize()
t2 = time.perf_counter()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    llm.generate(prompts, sp, use_tqdm=False)
    torch.cuda.synchronize()
t3 = time.perf_counter()
totals = {}
for e in prof.events():  # CPU ops are recorded too; only device-side events are kernels
    if e.device_type == DeviceType.CUDA:
        totals[e.name] = totals.get(e.name, 0.0) + e.time_range.elapsed_us()
seconds = {"engine": t1 - t0, "warm_up": t2 - t1, "profiled_run": t3 - t2, "read_events": time.perf_counter() - t3}
print("@@RESULT@@" + json.dumps({"kernels": sorted(totals.items(), key=lambda kv: -kv[1]), "seconds": seconds}),
      flush=True)
'''


@pytest.mark.gpu
def test_profile_a_real_moe_decode(lab, gpu_device, tiny_moe_dir, figures):
    """8 prompts x 32 greedy tokens through vLLM (eager, Triton MoE backend) under torch.profiler."""
    from course.gpu_fixtures import run_child

    spec = {
        "model": tiny_moe_dir,
        "prompts": [f"the scheduler decides which requests run {i}" for i in range(8)],
        "max_tokens": 32,
        "llm_kwargs": {"enforce_eager": True, "moe_backend": "triton", "gpu_memory_utilization": 0.3,
                       "max_model_len": 512, "seed": 0},
    }
    result, log, returncode = run_child(_PROFILE_CHILD, spec, timeout=300)
    assert result is not None, f"profiling child failed (exit {returncode}):\n" + "\n".join(log.splitlines()[-40:])
    kernels = [tuple(kv) for kv in result["kernels"]]
    figures("phase07.lab02.child_seconds", {k: round(v, 1) for k, v in result["seconds"].items()})

    measured = lab.summarize_profile(kernels)
    config = Path(tiny_moe_dir) / "config.json"  # absent when MINI_VLLM_MOE_MODEL names a hub id
    predicted = None
    if config.exists():
        shape = ModelConfig.from_hf_config(json.loads(config.read_text()))
        predicted = lab.predict_breakdown(shape, num_tokens=8, context_len=32)
    print(f"\n{'category':<10} {'predicted':>9} {'measured':>9}")
    for c in lab.CATEGORIES:
        guess = f"{predicted[c]:>9.1%}" if predicted else f"{'n/a':>9}"
        print(f"{c:<10} {guess} {measured[c]:>9.1%}")
        if predicted:
            figures(f"phase07.lab02.predicted.{c}", round(predicted[c], 3))
        figures(f"phase07.lab02.measured.{c}", round(measured[c], 3))
    figures("phase07.lab02.total_kernel_us", round(sum(us for _, us in kernels), 1))
    figures("phase07.lab02.top_kernels", [[n[:80], round(us, 1), lab.categorize_kernel(n)] for n, us in kernels[:12]])
    figures("phase07.lab02.top_other", [[n[:80], round(us, 1)] for n, us in kernels
                                        if lab.categorize_kernel(n) == "other"][:8])

    assert any("fused_moe_kernel" in n for n, _ in kernels), "the Triton MoE backend should launch fused_moe_kernel"
    for c in ("experts", "permute", "router", "attention"):
        assert measured[c] > 0, f"no kernel time categorized as {c}"
