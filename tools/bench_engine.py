"""Benchmark mini_vllm's scheduler step and end-to-end engine throughput (CPU).

    python tools/bench_engine.py            # full run, about 5 s
    python tools/bench_engine.py --quick    # smaller, for a smoke test

Part 1 times one decode step (schedule() + update_from_output() with a fake model) at
16, 64 and 256 running requests, with an empty and with a 4096-deep waiting queue and
two pool sizes. Per-step cost should grow linearly with the running set and not at all
with the waiting queue or the number of blocks: the scheduler never scans either.
Part 2 times LLM.generate end to end with the toy model and with the tiny transformer.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

from mini_vllm.engine import LLMEngine
from mini_vllm.kv_cache import KVCacheManager
from mini_vllm.request import Request
from mini_vllm.sampler import SamplingParams
from mini_vllm.scheduler import Scheduler, SchedulerConfig

PROMPT_LEN = 32
BLOCK_SIZE = 16
MAX_MODEL_LEN = 4096


def scheduler_step_us(num_running: int, num_waiting: int, num_blocks: int, steps: int, repeats: int) -> float:
    """Best-of-``repeats`` mean microseconds per decode step with ``num_running`` running."""
    kv = KVCacheManager(num_blocks, BLOCK_SIZE, enable_caching=True, max_model_len=MAX_MODEL_LEN)
    sched = Scheduler(SchedulerConfig(max_num_seqs=num_running, max_num_batched_tokens=num_running * PROMPT_LEN,
                                      max_model_len=MAX_MODEL_LEN), kv)
    params = SamplingParams(max_tokens=MAX_MODEL_LEN - PROMPT_LEN, ignore_eos=True)
    for i in range(num_running + num_waiting):
        # Distinct prompts: no prefix hits, so every request owns its blocks.
        sched.add_request(Request(str(i), [i % 256, i // 256 % 256] + [7] * (PROMPT_LEN - 2), params))

    def one_step():
        out = sched.schedule()
        sched.update_from_output(out, {rid: 5 for rid, n in out.num_scheduled_tokens.items()
                                       if Scheduler.needs_sample(sched.requests[rid], n)})
        return out

    first = one_step()  # prefill of the running set
    assert len(first.num_scheduled_tokens) == num_running and len(sched.waiting) == num_waiting
    # Park the long-lived objects outside the cyclic GC, as upstream does after start-up
    # (vllm/utils/gc_utils.py:96@0decac0 (freeze_gc_heap)); otherwise every collection
    # walks the whole waiting queue and the timing measures the GC, not the scheduler.
    gc.collect()
    gc.freeze()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            out = one_step()
        best = min(best, (time.perf_counter() - t0) / steps * 1e6)
        assert len(out.num_scheduled_tokens) == num_running and not out.preempted_req_ids
    gc.unfreeze()
    return best


def end_to_end(model: str, num_prompts: int, max_tokens: int) -> dict:
    engine = LLMEngine(model=model, block_size=BLOCK_SIZE, num_blocks=2048, max_model_len=512,
                       max_num_seqs=64, max_num_batched_tokens=2048)
    prompts = [f"request {i}: tell me something about the number {i * 7919}" for i in range(num_prompts)]
    params = SamplingParams(temperature=0.8, max_tokens=max_tokens, ignore_eos=True)
    t0 = time.perf_counter()
    outs = engine.generate(prompts, params)
    dt = time.perf_counter() - t0
    out_tokens = sum(len(o.output_token_ids) for o in outs)
    all_tokens = sum(s.total_num_scheduled_tokens for s in engine.step_stats)
    return dict(model=model, requests=num_prompts, steps=len(engine.step_stats), seconds=round(dt, 3),
                output_tokens=out_tokens, output_tok_per_s=round(out_tokens / dt),
                scheduled_tok_per_s=round(all_tokens / dt))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and requests")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    steps, repeats = (20, 2) if args.quick else (100, 5)

    print("scheduler step (schedule + update_from_output, fake model), best of", repeats, "x", steps, "steps")
    print(f"{'running':>8} {'waiting':>8} {'blocks':>8} {'us/step':>9} {'us/req':>7}")
    rows = []
    scheduler_step_us(16, 0, 1024, steps, 1)  # warm-up: imports, allocator, caches
    for num_running in (16, 64, 256):
        base_blocks = num_running * -(-(PROMPT_LEN + steps * repeats + 2) // BLOCK_SIZE) + 64
        for num_waiting, num_blocks in ((0, base_blocks), (4096, base_blocks), (0, 8 * base_blocks)):
            us = scheduler_step_us(num_running, num_waiting, num_blocks, steps, repeats)
            rows.append(dict(running=num_running, waiting=num_waiting, blocks=num_blocks, us_per_step=round(us, 1),
                             us_per_request=round(us / num_running, 2)))
            print(f"{num_running:>8} {num_waiting:>8} {num_blocks:>8} {us:>9.1f} {us / num_running:>7.2f}")
    growth = rows[6]["us_per_step"] / rows[0]["us_per_step"]
    print(f"step cost 256 vs 16 running: x{growth:.1f} for x16 requests (linear would be x16)")

    print("\nend to end, LLM.generate, temperature 0.8")
    e2e = [end_to_end("toy", 64 if not args.quick else 16, 64 if not args.quick else 16),
           end_to_end("tiny", 64 if not args.quick else 16, 64 if not args.quick else 16)]
    for r in e2e:
        print(f"{r['model']:>5}: {r['requests']} requests x {r['output_tokens'] // r['requests']} tokens in "
              f"{r['steps']} steps, {r['seconds']} s -> {r['output_tok_per_s']} output tok/s, "
              f"{r['scheduled_tok_per_s']} scheduled tok/s")
    if args.json:
        args.json.write_text(json.dumps(dict(scheduler=rows, growth_256_vs_16=round(growth, 2),
                                             end_to_end=e2e), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
