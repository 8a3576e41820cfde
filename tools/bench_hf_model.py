#!/usr/bin/env python3
"""Tokens/s and a time breakdown for a Hugging Face checkpoint served by mini_vllm (CPU).

    .venv/bin/python tools/bench_hf_model.py                          # the committed tiny-llama
    .venv/bin/python tools/bench_hf_model.py --model /path/to/SmolLM2-135M
    .venv/bin/python tools/bench_hf_model.py --model DIR --reference ref.json

Needs the models extra (safetensors, tokenizers); never imports torch. Four numbers:

1. prefill: one prompt of ``--prompt-tokens`` tokens in one step, tokens/s;
2. decode, batch 1: one request after a 16-token prompt, tokens/s over its decode steps;
3. decode, batch ``--batch``: that many requests decoding together, total tokens/s;
4. where a decode step goes, at batch 1 and batch ``--batch``: the engine's step split into attention (KV write +
   paged attention), the q/k/v/o projections, lm_head, the rest of the layers' forward
   (MLP, norms, RoPE, embedding) and everything outside the model (scheduler, sampler,
   building the flat batch). The MLP's matmuls cannot be timed in place (they are bare
   ``@`` inside the layer loop), so they are replayed alone at the same shapes and the
   remainder of the layer loop is reported as norms, RoPE, SiLU, embedding and Python.

The machine is a shared 2-core VM whose speed wanders from run to run (a decode step can
take 5x longer for a while), so each decode rate uses the *median* step time within a
run, and every figure is the best of ``--repeat`` runs. The breakdown comes from separate
runs with timers wrapped around the model's functions (the fastest of ``--repeat``), so
the timers never slow the throughput runs. With ``--reference`` (a file written by
``tools/make_tiny_checkpoint.py --reference-for DIR``) it also prints the largest logit
difference from transformers and whether the greedy tokens agree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import mini_vllm.model as model_module
from mini_vllm.engine import LLMEngine
from mini_vllm.loader import checkpoint_files, load_model, read_safetensors_header
from mini_vllm.sampler import SamplingParams
from mini_vllm.tokenizer import HFTokenizer

TEXT = ("A block table maps each logical block of a request to a physical block in the pool, "
        "and the scheduler hands out a token budget every step. ")
BLOCK_SIZE = 16


def prompt_ids(tokenizer: HFTokenizer, n: int, salt: int = 0) -> list[int]:
    ids = tokenizer.encode(f"{salt} " + TEXT * (n // 8 + 2))
    return ids[:n]


def engine_for(model, tokenizer, max_model_len: int, budget: int, max_num_seqs: int = 16) -> LLMEngine:
    num_blocks = max_num_seqs * -(-max_model_len // BLOCK_SIZE) + 1
    return LLMEngine(loaded_model=model, tokenizer=tokenizer, block_size=BLOCK_SIZE, num_blocks=num_blocks,
                     max_model_len=max_model_len, max_num_batched_tokens=budget, max_num_seqs=max_num_seqs,
                     enable_prefix_caching=False)


def timed_steps(engine: LLMEngine) -> list[float]:
    times = []
    while engine.has_unfinished_requests():
        t0 = time.perf_counter()
        engine.step()
        times.append(time.perf_counter() - t0)
    return times


def prefill_tokens_per_s(model, tokenizer, n: int) -> float:
    engine = engine_for(model, tokenizer, max_model_len=n + BLOCK_SIZE, budget=n + BLOCK_SIZE)
    engine.add_request(prompt_ids(tokenizer, n), SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True))
    (step,) = timed_steps(engine)
    return n / step


def decode_tokens_per_s(model, tokenizer, batch: int, new_tokens: int) -> float:
    """Total tokens/s of the median step in which all ``batch`` requests decode."""
    engine = engine_for(model, tokenizer, max_model_len=16 + new_tokens + BLOCK_SIZE, budget=16 * batch + BLOCK_SIZE,
                        max_num_seqs=batch)
    for i in range(batch):
        engine.add_request(prompt_ids(tokenizer, 16, salt=i),
                           SamplingParams(temperature=0.0, max_tokens=new_tokens, ignore_eos=True))
    steps = timed_steps(engine)
    assert len(steps) == new_tokens, "step 0 prefills every prompt, then one token per step"
    return batch / statistics.median(steps[1:])


class Timers:
    """Wraps module functions and model methods; accumulates seconds per label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list = []

    def wrap(self, owner, name: str, label: str) -> None:
        inner = getattr(owner, name)
        seconds = self.seconds

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - t0

        had_own = name in vars(owner)
        setattr(owner, name, timed)
        self._undo.append((owner, name, inner, had_own))

    def restore(self) -> None:
        for owner, name, inner, had_own in reversed(self._undo):
            if had_own:
                setattr(owner, name, inner)
            else:
                delattr(owner, name)


def breakdown(model, tokenizer, batch: int, new_tokens: int) -> dict[str, float]:
    """Milliseconds per decode step of ``batch`` requests, by part."""
    engine = engine_for(model, tokenizer, max_model_len=16 + new_tokens + BLOCK_SIZE, budget=16 * batch + BLOCK_SIZE,
                        max_num_seqs=batch)
    for i in range(batch):
        engine.add_request(prompt_ids(tokenizer, 16, salt=i),
                           SamplingParams(temperature=0.0, max_tokens=new_tokens, ignore_eos=True))
    engine.step()  # prefill, not timed
    timers = Timers()
    # TinyTransformer.forward looks these names up in mini_vllm.model at call time.
    timers.wrap(model_module, "write_kv", "attention")
    timers.wrap(model_module, "paged_attention", "attention")
    timers.wrap(model_module, "_linear", "q/k/v/o projections")
    timers.wrap(model, "compute_logits", "lm_head (+ final norm)")
    timers.wrap(model, "forward", "model forward")
    try:
        steps = timed_steps(engine)
    finally:
        timers.restore()
    n = len(steps)
    ms = {k: 1e3 * v / n for k, v in timers.seconds.items()}
    ms["engine step"] = 1e3 * sum(steps) / n
    ms["rest of forward"] = ms["model forward"] - ms["attention"] - ms["q/k/v/o projections"] - ms["lm_head (+ final norm)"]
    ms["outside the model"] = ms["engine step"] - ms["model forward"]
    # The MLP's matmuls alone, same shapes and weights, one token per request.
    h = np.ones((batch, model.config.hidden_size), dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(n):
        for layer in model.layers:
            (h @ layer["w_gate"]) * (h @ layer["w_up"]) @ layer["w_down"]
    ms["MLP matmuls (replayed alone)"] = 1e3 * (time.perf_counter() - t0) / n
    ms["norms, RoPE, SiLU, embedding, Python"] = ms["rest of forward"] - ms["MLP matmuls (replayed alone)"]
    return ms


def check_reference(model, tokenizer, path: Path) -> None:
    ref = json.loads(path.read_text())
    cases = ref["cases"]
    engine = engine_for(model, tokenizer, max_model_len=256, budget=256)
    rows: dict[str, list] = defaultdict(list)
    execute_model = engine.engine_core.execute_model

    def recording(so):
        ids, logits = execute_model(so)
        for rid, row in zip(ids, logits):
            rows[rid].append(row)
        return ids, logits

    engine.engine_core.execute_model = recording
    n_new = len(cases[0]["output_token_ids"])
    outs = engine.generate([c["prompt"] for c in cases], SamplingParams(temperature=0.0, max_tokens=n_new, ignore_eos=True))
    worst = max(float(np.abs(np.array(rows[o.request_id]) - np.array(c["logits"])).max()) for o, c in zip(outs, cases))
    same = all(o.output_token_ids == c["output_token_ids"] for o, c in zip(outs, cases))
    print(f"vs transformers: {len(cases)} prompts x {n_new} greedy tokens, identical tokens: {same}, "
          f"max |logit diff| {worst:.2e}")
    for o in outs:
        print(f"  {o.prompt!r} -> {o.text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path(model_module.__file__).parent / "testdata" / "tiny-llama")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reference", type=Path, help="reference JSON from make_tiny_checkpoint.py --reference-for")
    args = parser.parse_args()

    t0 = time.perf_counter()
    model, tokenizer = load_model(args.model), HFTokenizer(args.model)
    load_s = time.perf_counter() - t0
    c = model.config
    disk_dtypes = sorted({info["dtype"] for f in checkpoint_files(args.model) for info in read_safetensors_header(f)[0].values()})
    weight_bytes = sum(a.nbytes for a in [model.embed, model.final_norm] + [w for l in model.layers for w in l.values()])
    if not c.tie_word_embeddings:
        weight_bytes += model.lm_head.nbytes
    print(f"model: {args.model.name} ({c.model_type}), {model.num_parameters:,} parameters, {c.num_layers} layers, "
          f"hidden {c.hidden_size}, heads {c.num_heads}/{c.num_kv_heads} kv of {c.head_dim}, MLP {c.intermediate_size}, "
          f"vocab {c.vocab_size}, "
          f"tied lm_head: {c.tie_word_embeddings}")
    print(f"weights on disk: {', '.join(disk_dtypes)}; in memory float32, {weight_bytes / 2**20:.1f} MiB; "
          f"loaded in {load_s:.2f} s")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")

    decode_tokens_per_s(model, tokenizer, 1, 4)  # warm-up: first calls pay for allocation
    prefill = max(prefill_tokens_per_s(model, tokenizer, args.prompt_tokens) for _ in range(args.repeat))
    one = max(decode_tokens_per_s(model, tokenizer, 1, args.decode_tokens) for _ in range(args.repeat))
    many = max(decode_tokens_per_s(model, tokenizer, args.batch, args.decode_tokens) for _ in range(args.repeat))
    print(f"prefill, {args.prompt_tokens}-token prompt: {prefill:,.0f} tokens/s")
    print(f"decode, batch 1: {one:,.1f} tokens/s ({1e3 / one:.1f} ms/token, "
          f"{weight_bytes / 1e9 * one:.1f} GB/s of weights read)")
    print(f"decode, batch {args.batch}: {many:,.1f} tokens/s ({many / one:.1f}x batch 1)")

    parts = {b: min((breakdown(model, tokenizer, b, args.decode_tokens) for _ in range(args.repeat)),
                    key=lambda ms: ms["engine step"]) for b in (1, args.batch)}
    print(f"mean decode step, ms (share), timers on:  {'batch 1':>16s}  {f'batch {args.batch}':>16s}")
    rows = ("attention", "q/k/v/o projections", "MLP matmuls (replayed alone)", "lm_head (+ final norm)",
            "norms, RoPE, SiLU, embedding, Python", "outside the model", "engine step")
    for label in rows:
        cells = [f"{ms[label]:7.2f} ({100 * ms[label] / ms['engine step']:5.1f}%)" for ms in parts.values()]
        print(f"  {label:38s} {cells[0]:>16s}  {cells[1]:>16s}")
    matmuls = [sum(ms[k] for k in rows[1:4]) for ms in parts.values()]
    shares = [f"{m:7.2f} ({100 * m / ms['engine step']:5.1f}%)" for m, ms in zip(matmuls, parts.values())]
    print(f"  {'all matmuls (the three rows above)':38s} {shares[0]:>16s}  {shares[1]:>16s}")

    if args.reference:
        check_reference(model, tokenizer, args.reference)


if __name__ == "__main__":
    main()
