"""Lab 06-02 reference: predict what a format buys, then measure it on real vLLM.

CPU part: a cost model of weight bytes and KV-cache blocks for fp16, FP8 W8A8 and int4
W4A16, following vLLM's own block arithmetic. GPU part (``measure_engine`` in
``course.lab_support.phase_06``, given): the same model served by vLLM 0.22.1 at the
checkpoint dtype and with ``quantization="fp8"``, reporting throughput, KV capacity, which
linear method each layer got, and output sanity.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass

from course.lab_support.phase_06 import print_lab02_tables
from mini_vllm.config import ModelConfig
from mini_vllm.kv_memory import GIB, kv_page_size_bytes
from mini_vllm.quant import SCHEMES, QuantScheme


def weight_bytes(model: ModelConfig, scheme: QuantScheme, dtype_bytes: int = 2) -> int:
    """Bytes of the model's weights when its linear layers are stored in ``scheme``."""
    return math.ceil(model.linear_params() * scheme.bytes_per_weight()) + model.other_params() * dtype_bytes


def kv_blocks_for_scheme(model: ModelConfig, scheme: QuantScheme, gpu_memory_bytes: int,
                         gpu_memory_utilization: float = 0.9, activation_bytes: int = 0, block_size: int = 16,
                         kv_dtype_bytes: int = 2) -> int:
    """KV blocks vLLM would allocate on a card of ``gpu_memory_bytes`` once the weights are loaded."""
    available = int(gpu_memory_bytes * gpu_memory_utilization) - weight_bytes(model, scheme) - activation_bytes
    page = kv_page_size_bytes(model, block_size, kv_dtype_bytes)
    return max(available // page // model.num_layers, 0)


@dataclass(frozen=True)
class Prediction:
    """One row of the prediction table."""

    scheme: str
    weight_gib: float
    num_gpu_blocks: int
    kv_tokens: int
    max_concurrency: float


def predict(model: ModelConfig, gpu_memory_bytes: int, gpu_memory_utilization: float = 0.9,
            activation_bytes: int = 2 * GIB, context_len: int = 8192, block_size: int = 16,
            kv_dtype_bytes: int = 2) -> list[Prediction]:
    """One :class:`Prediction` per scheme of ``SCHEMES``, in its order."""
    rows = []
    for name, scheme in SCHEMES.items():
        blocks = kv_blocks_for_scheme(model, scheme, gpu_memory_bytes, gpu_memory_utilization, activation_bytes,
                                      block_size, kv_dtype_bytes)
        rows.append(Prediction(name, weight_bytes(model, scheme) / GIB, blocks, blocks * block_size,
                               blocks * block_size / context_len))
    return rows


def parse_kv_cache_tokens(log_text: str) -> int | None:
    """The KV capacity in tokens that vLLM's start-up log reports, or None when it reports none."""
    hits = re.findall(r"GPU KV cache size:\s*([\d,]+)\s*tokens", log_text)
    return int(hits[-1].replace(",", "")) if hits else None


if __name__ == "__main__":
    print_lab02_tables(sys.modules[__name__])
