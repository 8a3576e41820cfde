"""Scaffolding phase 06's labs hand the learner: test data, report builders and printers.

Each lab's ``__main__`` block passes its own module in (``sys.modules[__name__]``), so
``python starter.py`` and ``python solution.py`` print the same report from whichever
implementation they hold, and the code that builds it exists once.
"""
from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from mini_vllm.quant import relative_error


def gaussian(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Standard-normal float32 weights: the phase's stand-in for a trained matrix."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def print_report(report: dict[str, float]) -> None:
    """One ``name value`` line per figure, four decimals."""
    for name, value in report.items():
        print(f"{name:28s} {value:.4f}")


# --------------------------------------------------------------------- lab 06-01


def with_outlier_row(w: np.ndarray, row: int = 7, factor: float = 100.0) -> np.ndarray:
    """A copy of ``w`` whose row ``row`` is ``factor`` times louder."""
    w = np.array(w, dtype=np.float32, copy=True)
    w[row] *= factor
    return w


def lab01_report(lab: ModuleType) -> dict[str, float]:
    """Lab 06-01's numbers, computed with the lab's own quantizers."""
    w = gaussian((256, 512))
    x = gaussian((16, 512), seed=1)
    q, s = lab.quantize_per_channel(w)
    qt, st = lab.quantize_per_tensor(w)
    wo = with_outlier_row(w)
    rest = np.arange(256) != 7
    qo, so = lab.quantize_per_channel(wo)
    qto, sto = lab.quantize_per_tensor(wo)
    return {
        "per_channel_error": relative_error(w, lab.dequantize(q, s)),
        "per_tensor_error": relative_error(w, lab.dequantize(qt, st)),
        "fp32_over_int8": lab.memory_bytes(w) / lab.memory_bytes_quant(q, s),
        "fp16_over_int8": lab.memory_bytes(w.astype(np.float16)) / lab.memory_bytes_quant(q, s),
        "outlier_per_channel_error": relative_error(wo[rest], lab.dequantize(qo, so)[rest]),
        "outlier_per_tensor_error": relative_error(wo[rest], lab.dequantize(qto, sto)[rest]),
        "outlier_per_tensor_zeros": float(np.mean(qto[rest] == 0)),
        "matmul_error": relative_error(x @ w.T, lab.quant_linear(x, q, s)),
    }


# --------------------------------------------------------------------- lab 06-03

GROUP_SIZES = (16, 32, 64, 128, 256, 1024)


def channel_scaled(shape: tuple[int, int], sigma: float = 0.5, seed: int = 0) -> np.ndarray:
    """Gaussian weights whose input columns each get a log-normal magnitude (``exp(N(0, sigma))``).

    A crude model of a trained matrix, where some input channels carry larger weights than
    others: the loudest value in a long stretch of columns then overstates most of them.
    """
    rng = np.random.default_rng(seed)
    col = np.exp(rng.normal(0.0, sigma, size=shape[1]))
    return (rng.standard_normal(shape) * col[None, :]).astype(np.float32)


def lab03_sweep(lab: ModuleType, shape: tuple[int, int] = (256, 1024)) -> list[tuple[int, float, float, float]]:
    """Rows of ``(group_size, gaussian error, channel-scaled error, bytes per weight)``."""
    plain, scaled = gaussian(shape), channel_scaled(shape)
    rows = []
    for g in GROUP_SIZES:
        e_plain = relative_error(plain, lab.dequantize_grouped(*lab.quantize_grouped(plain, g), g))
        e_scaled = relative_error(scaled, lab.dequantize_grouped(*lab.quantize_grouped(scaled, g), g))
        rows.append((g, e_plain, e_scaled, lab.memory_bytes_grouped(shape, g) / (shape[0] * shape[1])))
    return rows


def print_lab03_table(lab: ModuleType) -> None:
    """The group-size table of lab 06-03's README."""
    print(f"{'group':>6} {'err gaussian':>13} {'err ch-scaled':>14} {'bytes/weight':>13} {'fp32/this':>10}")
    for g, e1, e2, bpw in lab03_sweep(lab):
        print(f"{g:>6} {e1:>13.4f} {e2:>14.4f} {bpw:>13.6f} {4 / bpw:>10.2f}")


# --------------------------------------------------------------------- lab 06-04

OUTLIER_CHANNELS = (17, 200)


def make_activations(outliers: bool = True, tokens: int = 128, hidden: int = 256, factor: float = 80.0,
                     seed: int = 0) -> np.ndarray:
    """Gaussian activations; with ``outliers``, channels 17 and 200 are ``factor`` times louder in every token."""
    x = np.random.default_rng(seed).standard_normal((tokens, hidden))
    if outliers:
        x[:, list(OUTLIER_CHANNELS)] *= factor
    return x


def make_weight(out_features: int = 256, in_features: int = 256, seed: int = 1) -> np.ndarray:
    """Gaussian weights with std 0.05, roughly the size of a trained projection's entries."""
    return np.random.default_rng(seed).standard_normal((out_features, in_features)) * 0.05


def channel_ratio(x: np.ndarray) -> float:
    """Loudest column's max|.| over the median column's; columns are input channels for X and W alike."""
    amax = np.abs(x).max(axis=0)
    return float(amax.max() / np.median(amax))


def lab04_report(lab: ModuleType) -> dict[str, float]:
    """Every number lab 06-04's README states, from the lab's own ``smooth`` and ``w8a8_matmul``."""
    from mini_vllm.quant import quantize_per_tensor

    out = {}
    for label, outliers in (("outlier", True), ("control", False)):
        x, w = make_activations(outliers), make_weight()
        ref = x @ w.T
        xh, wh, _ = lab.smooth(x, w)
        out[f"{label}_raw_error"] = relative_error(ref, lab.w8a8_matmul(x, w))
        out[f"{label}_smoothed_error"] = relative_error(ref, lab.w8a8_matmul(xh, wh))
        out[f"{label}_per_token_error"] = relative_error(ref, lab.w8a8_matmul(x, w, act="per_token"))
        quiet = np.ones(x.shape[1], dtype=bool)
        quiet[list(OUTLIER_CHANNELS)] = False
        out[f"{label}_quiet_codes_zero"] = float(np.mean(quantize_per_tensor(x)[0][:, quiet] == 0))
        out[f"{label}_x_absmax"] = float(np.abs(x).max())
        out[f"{label}_x_ratio_before"] = channel_ratio(x)
        out[f"{label}_x_ratio_after"] = channel_ratio(xh)
        out[f"{label}_w_ratio_before"] = channel_ratio(w)
        out[f"{label}_w_ratio_after"] = channel_ratio(wh)
        out[f"{label}_w_absmax_before"] = float(np.abs(w).max())
        out[f"{label}_w_absmax_after"] = float(np.abs(wh).max())
    x, w = make_activations(), make_weight()
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        xh, wh, _ = lab.smooth(x, w, alpha)
        out[f"alpha_{alpha:.2f}_error"] = relative_error(x @ w.T, lab.w8a8_matmul(xh, wh))
    return out


# --------------------------------------------------------------------- lab 06-02


def format_table(rows: list) -> str:
    """The prediction table: one line per scheme."""
    lines = [f"{'scheme':<12} {'weights GiB':>11} {'GPU blocks':>11} {'KV tokens':>10} {'seqs @ ctx':>10}"]
    for r in rows:
        lines.append(f"{r.scheme:<12} {r.weight_gib:>11.2f} {r.num_gpu_blocks:>11,} {r.kv_tokens:>10,} "
                     f"{r.max_concurrency:>10.1f}")
    return "\n".join(lines)


def print_lab02_tables(lab: ModuleType) -> None:
    """The three prediction tables of lab 06-02's README, from the lab's own ``predict``."""
    from mini_vllm.kv_memory import GIB, LLAMA_3_8B

    print("Llama-3.1-8B, 80 GiB card, gpu_memory_utilization=0.9, 2 GiB activations, 8192-token context")
    print(format_table(lab.predict(LLAMA_3_8B, 80 * GIB)))
    print("\nsame, KV cache in fp8 (kv_cache_dtype='fp8')")
    print(format_table(lab.predict(LLAMA_3_8B, 80 * GIB, kv_dtype_bytes=1)))
    print("\nsame model, 24 GiB card")
    print(format_table(lab.predict(LLAMA_3_8B, 24 * GIB)))


def measure_engine(lab: ModuleType, model: str, quantization: str | None = None, num_prompts: int = 64, max_tokens: int = 64,
                   gpu_memory_utilization: float = 0.3, max_model_len: int = 1024,
                   enforce_eager: bool = True) -> dict:
    """Serve ``model`` with real vLLM, generate, and read the three meters. Needs a GPU.

    The lab's ``parse_kv_cache_tokens`` reads the KV-capacity line from the captured log.

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
            "kv_cache_tokens_logged": lab.parse_kv_cache_tokens("\n".join(lines)),
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
