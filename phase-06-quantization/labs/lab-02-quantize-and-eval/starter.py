"""Lab 06-02: predict what a format buys, then measure it on real vLLM.

Fill in TODOs 1-4 (README "Tasks"). The table printer and the GPU driver ``measure_engine``
come from ``course.lab_support.phase_06``; ``python starter.py`` prints your prediction
tables once the TODOs are done.
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
    raise NotImplementedError("TODO 1: bytes of the weights in a scheme (README task 1)")


def kv_blocks_for_scheme(model: ModelConfig, scheme: QuantScheme, gpu_memory_bytes: int,
                         gpu_memory_utilization: float = 0.9, activation_bytes: int = 0, block_size: int = 16,
                         kv_dtype_bytes: int = 2) -> int:
    """KV blocks vLLM would allocate on a card of ``gpu_memory_bytes`` once the weights are loaded."""
    raise NotImplementedError("TODO 2: KV blocks left on the card (README task 2)")


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
    raise NotImplementedError("TODO 3: one prediction per scheme (README task 3)")


def parse_kv_cache_tokens(log_text: str) -> int | None:
    """The KV capacity in tokens that vLLM's start-up log reports, or None when it reports none."""
    raise NotImplementedError("TODO 4: read the KV capacity from a log (README task 4)")


if __name__ == "__main__":
    print_lab02_tables(sys.modules[__name__])
