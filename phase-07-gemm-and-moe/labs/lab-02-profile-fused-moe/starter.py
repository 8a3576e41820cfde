"""Lab 07-02: predict a MoE decode step's kernel-time breakdown, then read a profile.

Your work: the six functions marked TODO. ``Kernel``, ``CATEGORIES`` and ``step_kernels``
(the non-MoE kernels of a step) come from ``course.lab_support.phase_07``; the shapes are
``mini_vllm.config.ModelConfig``.
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
    raise NotImplementedError("TODO 1: experts a batch wakes up (README task 1)")


def kernel_time(kernel: Kernel, gpu: GpuSpec) -> float:
    """Seconds one kernel takes on ``gpu`` under the roofline cost model."""
    raise NotImplementedError("TODO 2: one kernel under the roofline (README task 2)")


def moe_block_kernels(model: ModelConfig, num_tokens: int, dtype_bytes: int = 2) -> list[Kernel]:
    """The kernels of one MoE block for ``num_tokens`` tokens, in launch order."""
    raise NotImplementedError("TODO 3: the kernels of one MoE block (README task 3)")


def predict_breakdown(model: ModelConfig, num_tokens: int, context_len: int, gpu: GpuSpec = H100_SXM,
                      dtype_bytes: int = 2) -> dict[str, float]:
    """Share of predicted step time per category: every name in ``CATEGORIES``, summing to 1."""
    raise NotImplementedError("TODO 4: predicted time share per category (README task 4)")


def categorize_kernel(name: str) -> str:
    """The category in ``CATEGORIES`` of a CUDA kernel name from a profiler table."""
    raise NotImplementedError("TODO 5: sort a kernel name into a category (README task 5)")


def summarize_profile(kernels: list[tuple[str, float]]) -> dict[str, float]:
    """Share of total kernel time per category from ``(kernel name, microseconds)`` pairs."""
    raise NotImplementedError("TODO 6: measured time share per category (README task 6)")
