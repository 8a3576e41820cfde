"""Lab 07-02 reference: predict a MoE decode step's kernel-time breakdown, then read a profile.

The cost model: a decode step is a list of kernels; each kernel takes
``kernel_floor + max(flops / peak_flops, bytes / hbm_bandwidth)``. Kernels are
grouped into the categories a profiler's kernel table can tell apart by name.
The gate GEMM that computes router logits is a plain GEMM to the profiler (cuBLAS
names it like ``qkv_proj``), so both the model and the summary count it under
``gemm``; ``router`` means the top-k softmax kernel.
"""
from __future__ import annotations

from dataclasses import dataclass

from mini_vllm.gemm import H100_SXM, GpuSpec

CATEGORIES = ("experts", "permute", "router", "attention", "gemm", "other")


@dataclass(frozen=True)
class MoEShape:
    """The sizes of a Mixtral-style decoder that the cost model needs."""

    hidden_size: int
    intermediate_size: int
    num_experts: int
    top_k: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    dtype_bytes: int = 2

    @classmethod
    def from_hf_config(cls, cfg: dict) -> "MoEShape":
        """Read a Hugging Face ``config.json`` of a Mixtral-style model."""
        heads = cfg["num_attention_heads"]
        return cls(
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_experts=cfg["num_local_experts"],
            top_k=cfg["num_experts_per_tok"],
            num_layers=cfg["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=cfg.get("num_key_value_heads", heads),
            head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
            vocab_size=cfg["vocab_size"],
        )


# The tiny random model the GPU test profiles (course.gpu_fixtures.build_tiny_moe).
TINY_MOE = MoEShape(256, 512, 8, 2, 2, 4, 2, 64, 512)
# Mixtral-8x7B's published configuration.
MIXTRAL_8X7B = MoEShape(4096, 14336, 8, 2, 32, 32, 8, 128, 32000)


@dataclass(frozen=True)
class Kernel:
    category: str
    name: str
    flops: float
    bytes: float


def expected_active_experts(num_experts: int, top_k: int, num_tokens: int) -> float:
    """Expected number of distinct experts hit by ``num_tokens`` tokens under uniform routing.

    One token misses a given expert with probability ``(E - k) / E``; the expert is idle
    only if every token misses it. Each active expert's weights are read once per step,
    which is what makes decode MoE cost grow with batch before it saturates at ``E``.
    """
    return num_experts * (1.0 - ((num_experts - top_k) / num_experts) ** num_tokens)


def kernel_time(kernel: Kernel, gpu: GpuSpec) -> float:
    """Seconds: a fixed floor plus the slower of compute and memory traffic."""
    return gpu.kernel_floor_s + max(kernel.flops / gpu.peak_flops, kernel.bytes / gpu.hbm_bytes_per_s)


def moe_block_kernels(shape: MoEShape, num_tokens: int) -> list[Kernel]:
    """The kernels of one MoE block for ``num_tokens`` tokens, in launch order.

    gate GEMM, top-k softmax, ``moe_align_block_size`` (skipped when
    ``num_tokens * top_k * 4 <= num_experts``, the kernel's one-token-per-block path),
    GEMM 1 (gate and up), ``silu_and_mul``, GEMM 2 (down), ``moe_sum``.
    """
    T, H, I, E, k, dt = (num_tokens, shape.hidden_size, shape.intermediate_size,
                         shape.num_experts, shape.top_k, shape.dtype_bytes)
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


def step_kernels(shape: MoEShape, num_tokens: int, context_len: int) -> list[Kernel]:
    """Every kernel of one decode step: per layer attention block + MoE block, then the head."""
    T, H, V, dt = num_tokens, shape.hidden_size, shape.vocab_size, shape.dtype_bytes
    q, kv, hd = shape.num_heads, shape.num_kv_heads, shape.head_dim
    qkv = (q + 2 * kv) * hd
    layer = [
        Kernel("other", "fused_add_rms_norm", 0, 3 * T * H * dt),
        Kernel("gemm", "qkv_proj", 2 * T * H * qkv, (H * qkv + T * H + T * qkv) * dt),
        Kernel("other", "rotary_embedding", 0, 2 * T * (q + kv) * hd * dt),
        Kernel("attention", "reshape_and_cache", 0, 2 * T * 2 * kv * hd * dt),
        Kernel("attention", "attention", 4 * T * context_len * q * hd,
               (T * context_len * 2 * kv * hd + 2 * T * q * hd) * dt),
        Kernel("gemm", "o_proj", 2 * T * q * hd * H, (q * hd * H + T * q * hd + T * H) * dt),
        Kernel("other", "fused_add_rms_norm", 0, 3 * T * H * dt),
    ] + moe_block_kernels(shape, num_tokens)
    head = [
        Kernel("other", "embedding", 0, 2 * T * H * dt),
        Kernel("other", "final_norm", 0, 3 * T * H * dt),
        Kernel("gemm", "lm_head", 2 * T * H * V, (H * V + T * H + T * V) * dt),
        Kernel("other", "sampler", 0, T * V * 4),
    ]
    return layer * shape.num_layers + head


def predict_breakdown(shape: MoEShape, num_tokens: int, context_len: int, gpu: GpuSpec = H100_SXM) -> dict[str, float]:
    """Share of predicted step time per category (every name in ``CATEGORIES``; sums to 1)."""
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for kernel in step_kernels(shape, num_tokens, context_len):
        totals[kernel.category] += kernel_time(kernel, gpu)
    step = sum(totals.values())
    return {c: t / step for c, t in totals.items()}


# Checked in this order: the first category with a matching substring wins.
_PATTERNS = (
    ("permute", ("moe_align_block_size", "count_and_sort_expert_tokens", "moe_sum", "moe_permute",
                 "moe_unpermute", "expandinputrows", "finalizemoerouting")),
    ("experts", ("fused_moe_kernel", "act_and_mul", "silu_and_mul")),
    ("router", ("topkgating", "moesoftmax", "moetopk", "topk_softmax", "grouped_topk")),
    ("attention", ("flash", "attention", "attn", "reshape_and_cache", "paged")),
    ("gemm", ("gemm", "gemv", "nvjet", "cutlass", "xmma", "cublas", "matmul")),
)


def categorize_kernel(name: str) -> str:
    """Map a CUDA kernel name from a profiler table to one of ``CATEGORIES``.

    Matching is on lower-cased substrings, most specific first: MoE bookkeeping before
    the expert GEMMs, attention before GEMM (FlashAttention 3's kernels are CUTLASS
    templates), anything unrecognised to ``other``.
    """
    lowered = name.lower()
    for category, needles in _PATTERNS:
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
