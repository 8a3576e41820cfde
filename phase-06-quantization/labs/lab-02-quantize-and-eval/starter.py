"""Lab 06-02: predict what a format buys, then measure it on real vLLM.

Fill in TODOs 1-4 (README "Tasks"). ``format_table`` and the GPU driver ``measure_engine``
are given; ``python starter.py`` prints your prediction tables once the TODOs are done.

CPU part: a cost model of weight bytes and KV-cache blocks for fp16, FP8 W8A8 and int4
W4A16, following vLLM's own block arithmetic. GPU part (``measure_engine``, given): the
same model served by vLLM 0.22.1 at the checkpoint dtype and with ``quantization="fp8"``,
reporting throughput, KV capacity, which linear method each layer got, and output sanity.
"""

from __future__ import annotations

import math
import re  # noqa: F401  (TODO 4 needs it)
from dataclasses import dataclass

from mini_vllm.config import ModelConfig
from mini_vllm.kv_memory import GIB
from mini_vllm.quant import SCHEMES, QuantScheme


def weight_bytes(shape: ModelConfig, scheme: QuantScheme, dtype_bytes: int = 2) -> int:
    """Linear weights at ``scheme.bytes_per_weight()`` (rounded up), everything else at ``dtype_bytes``."""
    raise NotImplementedError("TODO 1: linear_params * bytes_per_weight (rounded up) + other_params * dtype_bytes — see README step 1")


def kv_blocks_for_scheme(shape: ModelConfig, scheme: QuantScheme, gpu_memory_bytes: int, gpu_memory_utilization: float = 0.9,
                   activation_bytes: int = 0, block_size: int = 16, kv_dtype_bytes: int = 2) -> int:
    """KV blocks vLLM would allocate: what is left of the requested memory, per layer, per page.

    page = K and V of ``block_size`` tokens for one layer = 2 * block_size * kv_heads * head_dim * bytes.
    """
    raise NotImplementedError("TODO 2: (memory * utilization - weights - activations) // page // num_layers, floored at 0 — see README step 2")


@dataclass(frozen=True)
class Prediction:
    """One row of the prediction table."""

    scheme: str
    weight_gib: float
    num_gpu_blocks: int
    kv_tokens: int
    max_concurrency: float


def predict(shape: ModelConfig, gpu_memory_bytes: int, gpu_memory_utilization: float = 0.9,
            activation_bytes: int = 2 * GIB, context_len: int = 8192, block_size: int = 16,
            kv_dtype_bytes: int = 2) -> list[Prediction]:
    """One :class:`Prediction` per scheme in ``SCHEMES`` order; concurrency = KV tokens / context_len."""
    raise NotImplementedError("TODO 3: one Prediction per scheme in SCHEMES order — see README step 3")


def parse_kv_cache_tokens(log_text: str) -> int | None:
    """The token count of the last ``GPU KV cache size: N tokens`` line, or None if there is none."""
    raise NotImplementedError("TODO 4: find the last 'GPU KV cache size: N tokens' line, drop the commas — see README step 4")


# --------------------------------------------------------------------- given: table + GPU run


def format_table(rows: list[Prediction]) -> str:
    lines = [f"{'scheme':<12} {'weights GiB':>11} {'GPU blocks':>11} {'KV tokens':>10} {'seqs @ ctx':>10}"]
    for r in rows:
        lines.append(f"{r.scheme:<12} {r.weight_gib:>11.2f} {r.num_gpu_blocks:>11,} {r.kv_tokens:>10,} "
                     f"{r.max_concurrency:>10.1f}")
    return "\n".join(lines)


def measure_engine(model: str, quantization: str | None = None, num_prompts: int = 64, max_tokens: int = 64,
                   gpu_memory_utilization: float = 0.3, max_model_len: int = 1024,
                   enforce_eager: bool = True) -> dict:
    """Serve ``model`` with real vLLM, generate, and read the three meters. Needs a GPU.

    Runs the engine core in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so that its
    log lines and its model can be read here. It tears the engine down before returning,
    but that does not give the KV cache back to a process that keeps running (three calls
    in one process left 6.9 of 79 GiB free on an H100), so call it once per fresh process;
    the test does exactly that.
    """
    import gc
    import logging
    import os
    import time

    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    import torch
    from vllm import LLM, SamplingParams
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

    lines: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = _Keep(level=logging.INFO)
    logging.getLogger("vllm").addHandler(handler)
    llm = None
    try:
        start = time.perf_counter()
        llm = LLM(model=model, quantization=quantization, gpu_memory_utilization=gpu_memory_utilization,
                  max_model_len=max_model_len, enforce_eager=enforce_eager, seed=0)
        startup_s = time.perf_counter() - start
        cache = llm.llm_engine.vllm_config.cache_config
        hf_config = llm.llm_engine.vllm_config.model_config.hf_config.to_dict()

        def describe(model_module: torch.nn.Module) -> dict:
            methods = {}
            for name, module in model_module.named_modules():
                leaf = name.rsplit(".", 1)[-1]
                if leaf in ("qkv_proj", "o_proj", "gate_up_proj", "down_proj", "lm_head") and leaf not in methods:
                    methods[leaf] = type(getattr(module, "quant_method", None)).__name__
                    if leaf == "qkv_proj":
                        methods["qkv_weight_dtype"] = str(module.weight.dtype)
            methods["param_bytes"] = sum(p.numel() * p.element_size() for p in model_module.parameters())
            return methods

        layers = llm.apply_model(describe)[0]
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True, logprobs=1)
        prompts = [f"the quick brown fox number {i} jumps over" for i in range(num_prompts)]
        # Warm up at the timed batch size, so Triton JIT compiles land outside the timing.
        llm.generate(prompts, SamplingParams(max_tokens=4, temperature=0.0, ignore_eos=True), use_tqdm=False)
        torch.cuda.synchronize()
        start = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        completions = [o.outputs[0] for o in outputs]
        generated = sum(len(c.token_ids) for c in completions)
        finite = all(math.isfinite(lp.logprob) for c in completions for step in (c.logprobs or [])
                     for lp in step.values())
        return {
            "model": model,
            "quantization": quantization or "none",
            "startup_s": round(startup_s, 1),
            "output_tokens_per_s": round(generated / elapsed),
            "num_gpu_blocks": cache.num_gpu_blocks,
            "block_size": cache.block_size,
            "kv_cache_tokens_logged": parse_kv_cache_tokens("\n".join(lines)),
            "param_bytes": layers.pop("param_bytes"),
            "layers": layers,
            "hf_config": hf_config,
            "all_full_length": all(len(c.token_ids) == max_tokens for c in completions),
            "all_logprobs_finite": finite,
            "vocab_ok": all(0 <= t < hf_config["vocab_size"] for c in completions for t in c.token_ids),
            "sample_token_ids": list(completions[0].token_ids[:8]),
        }
    finally:
        logging.getLogger("vllm").removeHandler(handler)
        del llm
        gc.collect()
        cleanup_dist_env_and_memory()


if __name__ == "__main__":
    from mini_vllm.kv_memory import LLAMA_3_8B

    print("Llama-3.1-8B, 80 GiB card, gpu_memory_utilization=0.9, 2 GiB activations, 8192-token context")
    print(format_table(predict(LLAMA_3_8B, 80 * GIB)))
    print("\nsame, KV cache in fp8 (kv_cache_dtype='fp8')")
    print(format_table(predict(LLAMA_3_8B, 80 * GIB, kv_dtype_bytes=1)))
    print("\nsame model, 24 GiB card")
    print(format_table(predict(LLAMA_3_8B, 24 * GIB)))
