"""Lab 07-02: predict a MoE decode step's kernel-time breakdown, then read a profile.

Your work: the six functions marked TODO. The shapes, ``Kernel`` and ``step_kernels``
(the non-MoE kernels of a step) are given.

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
    raise NotImplementedError(
        "TODO 1: E * (1 - ((E - k) / E) ** num_tokens) — see README step 1"
    )


def kernel_time(kernel: Kernel, gpu: GpuSpec) -> float:
    """Seconds: a fixed floor plus the slower of compute and memory traffic."""
    raise NotImplementedError(
        "TODO 2: gpu.kernel_floor_s + max(flops / peak, bytes / bandwidth) — see README step 2"
    )


def moe_block_kernels(shape: MoEShape, num_tokens: int) -> list[Kernel]:
    """The kernels of one MoE block for ``num_tokens`` tokens, in launch order.

    gate GEMM, top-k softmax, ``moe_align_block_size`` (skipped when
    ``num_tokens * top_k * 4 <= num_experts``, the kernel's one-token-per-block path),
    GEMM 1 (gate and up), ``silu_and_mul``, GEMM 2 (down), ``moe_sum``.
    """
    raise NotImplementedError(
        "TODO 3: seven Kernel(...) entries in launch order; skip the align kernel when "
        "num_tokens * top_k * 4 <= num_experts — see README step 3"
    )


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
    raise NotImplementedError(
        "TODO 4: sum kernel_time per category over step_kernels(...), divide by the total — see README step 4"
    )


def categorize_kernel(name: str) -> str:
    """Map a CUDA kernel name from a profiler table to one of ``CATEGORIES``.

    Matching is on lower-cased substrings, most specific first: MoE bookkeeping before
    the expert GEMMs, attention before GEMM (FlashAttention 3's kernels are CUTLASS
    templates), anything unrecognised to ``other``.
    """
    raise NotImplementedError(
        "TODO 5: lower-case the name and test substrings, MoE bookkeeping and attention "
        "before GEMM — see README step 5"
    )


def summarize_profile(kernels: list[tuple[str, float]]) -> dict[str, float]:
    """Share of total kernel time per category from ``(kernel name, microseconds)`` pairs."""
    raise NotImplementedError(
        "TODO 6: add each kernel's microseconds to its categorize_kernel(name), divide by the total; "
        "raise ValueError when the total is zero — see README step 6"
    )
