"""Lab 07-02 reference: predict a MoE decode step's kernel-time breakdown, then read a profile.

The cost model: a decode step is a list of kernels; each kernel takes
``kernel_floor + max(flops / peak_flops, bytes / hbm_bandwidth)``. Kernels are
grouped into the categories a profiler's kernel table can tell apart by name.
The gate GEMM that computes router logits is a plain GEMM to the profiler (cuBLAS
names it like ``qkv_proj``), so both the model and the summary count it under
``gemm``; ``router`` means the top-k softmax kernel.
"""
from __future__ import annotations

from course.lab_support.phase_07 import CATEGORIES, Kernel, step_kernels
from mini_vllm.config import ModelConfig
from mini_vllm.gemm import H100_SXM, GpuSpec
from mini_vllm.kv_memory import MIXTRAL_8X7B  # noqa: F401 (the tests' big model)

# The tiny random model the GPU test profiles (course.gpu_fixtures.build_tiny_moe).
TINY_MOE = ModelConfig(name="tiny-moe", hidden_size=256, intermediate_size=512, num_experts=8, num_experts_per_tok=2,
                       num_layers=2, num_heads=4, num_kv_heads=2, head_dim=64, vocab_size=512)


def expected_active_experts(num_experts: int, top_k: int, num_tokens: int) -> float:
    """Expected number of distinct experts that ``num_tokens`` uniformly routed tokens wake up."""
    return num_experts * (1.0 - ((num_experts - top_k) / num_experts) ** num_tokens)


def kernel_time(kernel: Kernel, gpu: GpuSpec) -> float:
    """Seconds one kernel takes on ``gpu`` under the roofline cost model."""
    return gpu.kernel_floor_s + max(kernel.flops / gpu.peak_flops, kernel.bytes / gpu.hbm_bytes_per_s)


def moe_block_kernels(model: ModelConfig, num_tokens: int, dtype_bytes: int = 2) -> list[Kernel]:
    """The kernels of one MoE block for ``num_tokens`` tokens, in launch order."""
    T, H, I, E, k, dt = (num_tokens, model.hidden_size, model.intermediate_size,
                         model.num_experts, model.num_experts_per_tok, dtype_bytes)
    active = expected_active_experts(E, k, T)
    kernels = [
        Kernel("gemm", "gate", 2 * T * H * E, (H * E + T * H + T * E) * dt),
        Kernel("router", "topk_softmax", 0, T * E * dt + T * k * 8),
    ]
    if T * k * 4 > E:
        kernels.append(Kernel("permute", "moe_align_block_size", 0, T * k * 4 * 2))
    kernels += [
        Kernel("experts", "fused_moe_kernel_w13", 2 * T * k * 2 * I * H,
               (active * 2 * I * H + T * H + T * k * 2 * I) * dt),
        Kernel("experts", "silu_and_mul", 0, (T * k * 2 * I + T * k * I) * dt),
        Kernel("experts", "fused_moe_kernel_w2", 2 * T * k * I * H, (active * H * I + T * k * I + T * k * H) * dt),
        Kernel("permute", "moe_sum", 0, (T * k * H + T * H) * dt),
    ]
    return kernels


def predict_breakdown(model: ModelConfig, num_tokens: int, context_len: int, gpu: GpuSpec = H100_SXM,
                      dtype_bytes: int = 2) -> dict[str, float]:
    """Share of predicted step time per category: every name in ``CATEGORIES``, summing to 1."""
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for kernel in step_kernels(model, num_tokens, context_len, moe_block_kernels, dtype_bytes):
        totals[kernel.category] += kernel_time(kernel, gpu)
    step = sum(totals.values())
    return {c: t / step for c, t in totals.items()}


def categorize_kernel(name: str) -> str:
    """The category in ``CATEGORIES`` of a CUDA kernel name from a profiler table."""
    patterns = (  # checked in this order: the first category with a matching substring wins
        ("permute", ("moe_align_block_size", "count_and_sort_expert_tokens", "moe_sum", "moe_permute",
                     "moe_unpermute", "expandinputrows", "finalizemoerouting")),
        ("experts", ("fused_moe_kernel", "act_and_mul", "silu_and_mul")),
        ("router", ("topkgating", "moesoftmax", "moetopk", "topk_softmax", "grouped_topk")),
        ("attention", ("flash", "attention", "attn", "reshape_and_cache", "paged")),
        ("gemm", ("gemm", "gemv", "nvjet", "cutlass", "xmma", "cublas", "matmul")),
    )
    lowered = name.lower()
    for category, needles in patterns:
        if any(n in lowered for n in needles):
            return category
    return "other"


def summarize_profile(kernels: list[tuple[str, float]]) -> dict[str, float]:
    """Share of total kernel time per category from ``(kernel name, microseconds)`` pairs."""
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for name, us in kernels:
        totals[categorize_kernel(name)] += us
    total = sum(totals.values())
    if total <= 0:
        raise ValueError("the profile holds no kernel time")
    return {c: t / total for c, t in totals.items()}
