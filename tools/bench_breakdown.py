#!/usr/bin/env python3
"""Where mini_vllm's time goes on a race workload (``tools/bench_race.py``), by part.

    .venv/bin/python tools/bench_breakdown.py --model DIR --requests 8,32

A sibling of ``tools/bench_hf_model.py``'s breakdown (whose ``Timers`` it reuses), over
the race's mixed prefill-and-decode workload instead of pure decode: the same seeded
requests, the same engine settings as the race's mini_vllm worker, and timers wrapped
around the model's functions. Parts, in seconds of the whole workload and shares of
it: attention (per-step metadata, KV writes, paged attention), the q/k/v/o projections,
the MLP (where the model has a separate ``_mlp``), lm_head with the final norm, the rest
of the forward (norms, RoPE, SiLU, embedding, Python) and everything outside the model
(scheduler, sampler, building the flat batch). Timers cost a little, so the total is a
few percent above an untimed run; each size keeps the fastest of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import mini_vllm.attention as attention_module
import mini_vllm.model as model_module
from mini_vllm.config import load_module_from_path
from mini_vllm.engine import LLMEngine
from mini_vllm.loader import load_model
from mini_vllm.sampler import SamplingParams
from mini_vllm.tokenizer import HFTokenizer

ROOT = Path(__file__).resolve().parent.parent
# Sibling scripts, loaded by path (tools/ is not a package).
bench_race = load_module_from_path(ROOT / "tools" / "bench_race.py")
Timers = load_module_from_path(ROOT / "tools" / "bench_hf_model.py").Timers

ROWS = ("attention", "q/k/v/o projections", "MLP", "lm_head (+ final norm)", "norms, RoPE, SiLU, embedding, Python",
        "outside the model", "engine, whole workload")


def wrap_model(timers: Timers, model) -> None:
    """Wrap whichever of the model's seams this version of mini_vllm has."""
    if hasattr(attention_module, "PagedBatch"):
        for name in ("__init__", "decode_attention"):
            timers.wrap(attention_module.PagedBatch, name, "attention")
    for name in ("write_kv", "paged_attention"):  # the per-request loop of earlier versions
        if hasattr(model_module, name):
            timers.wrap(model_module, name, "attention")
    timers.wrap(model_module, "_linear", "q/k/v/o projections")
    if hasattr(model_module, "_mlp"):
        timers.wrap(model_module, "_mlp", "MLP")
    timers.wrap(model, "compute_logits", "lm_head (+ final norm)")
    timers.wrap(model, "forward", "model forward")


def breakdown(model, tokenizer, requests: list[dict], max_model_len: int) -> dict[str, float]:
    num_blocks = bench_race.MAX_NUM_SEQS * -(-max_model_len // bench_race.MINI_BLOCK_SIZE) + 1
    engine = LLMEngine(loaded_model=model, tokenizer=tokenizer, block_size=bench_race.MINI_BLOCK_SIZE,
                       num_blocks=num_blocks, max_model_len=max_model_len,
                       max_num_batched_tokens=bench_race.MAX_NUM_BATCHED_TOKENS,
                       max_num_seqs=bench_race.MAX_NUM_SEQS, enable_prefix_caching=False)
    timers = Timers()
    wrap_model(timers, model)
    try:
        start = time.perf_counter()
        engine.generate([r["prompt_ids"] for r in requests],
                        [SamplingParams(temperature=0.0, max_tokens=r["max_tokens"], ignore_eos=True) for r in requests])
        total = time.perf_counter() - start
    finally:
        timers.restore()
    s = dict(timers.seconds)
    s["engine, whole workload"] = total
    s.setdefault("MLP", 0.0)
    s["norms, RoPE, SiLU, embedding, Python"] = (s["model forward"] - s["attention"] - s["q/k/v/o projections"]
                                                 - s["MLP"] - s["lm_head (+ final norm)"])
    s["outside the model"] = total - s["model forward"]
    s["output tokens"] = sum(r["max_tokens"] for r in requests)
    return s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--requests", type=lambda s: [int(x) for x in s.split(",")], default=[8, 32])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-model-len", type=int, default=bench_race.MAX_MODEL_LEN)
    args = parser.parse_args()

    model, tokenizer = load_model(args.model), HFTokenizer(args.model)
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    print(f"model {args.model.name}; numpy {np.__version__}, {blas['name']} {blas['version']}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'auto')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'all cores')}")
    parts = {}
    for n in args.requests:
        requests = bench_race.make_workload(n, args.seed)
        for r in requests:
            r["prompt_ids"] = tokenizer.encode(r["prompt"])
        breakdown(model, tokenizer, requests[:1], args.max_model_len)  # warm-up
        parts[n] = min((breakdown(model, tokenizer, requests, args.max_model_len) for _ in range(args.repeat)),
                       key=lambda s: s["engine, whole workload"])
    header = "".join(f"{f'{n} requests':>18s}" for n in args.requests)
    print(f"seconds (share), timers on{'':13s}{header}")
    for label in ROWS:
        cells = "".join(f" {s[label]:8.2f} ({100 * s[label] / s['engine, whole workload']:5.1f}%)" for s in parts.values())
        print(f"  {label:37s}{cells}")
    rates = "".join(f"{s['output tokens'] / s['engine, whole workload']:18.1f}" for s in parts.values())
    print(f"  {'output tokens/s (timers on)':37s}{rates}")


if __name__ == "__main__":
    main()
