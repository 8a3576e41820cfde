"""``python -m mini_vllm generate|trace|serve``: run the engine from a shell.

``generate`` prints one completion; ``trace`` prints one line per engine step (who was
scheduled for how many tokens, queue sizes, blocks in use, preemptions, finishes), the
quickest way to watch continuous batching, chunked prefill and preemption happen;
``serve`` puts the OpenAI-compatible HTTP server in front of it
(``mini_vllm.entrypoints.openai_server``, needs ``pip install -e '.[serve]'``).
``--model`` takes "tiny" (default), "toy", or a Hugging Face Llama/Qwen2 checkpoint
directory (needs ``pip install -e '.[models]'``). ``--scheduler`` and ``--block-pool``
run the engine on a learner's own lab file (``SchedulerConfig.scheduler_cls``,
``CacheConfig.block_pool_cls``), e.g.
``python -m mini_vllm trace "hi" --block-pool phase-02-paged-attention/labs/lab-01-block-allocator/starter.py``.
"""

from __future__ import annotations

import argparse
import string
import sys

from mini_vllm.engine import LLMEngine
from mini_vllm.sampler import SamplingParams


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV block")
    p.add_argument("--num-blocks", type=int, default=256, help="KV blocks in the cache (block 0 is the null block)")
    p.add_argument("--max-model-len", type=int, default=512, help="longest prompt + output, in tokens")
    p.add_argument("--max-num-seqs", type=int, default=16, help="most requests running at once")
    p.add_argument("--max-num-batched-tokens", dest="budget", type=int, default=2048,
                   help="token budget of one step")
    p.add_argument("--long-prefill-token-threshold", dest="threshold", type=int, default=0,
                   help="most tokens one prefill chunk may take per step (0 = off)")
    p.add_argument("--no-prefix-caching", action="store_true", help="turn automatic prefix caching off")
    p.add_argument("--model", default="tiny", help="tiny, toy, or a checkpoint directory (config.json, "
                   "*.safetensors, tokenizer.json)")
    p.add_argument("--seed", type=int, default=0, help="engine sampling seed")
    p.add_argument("--scheduler", default=None, metavar="FILE[:CLASS]",
                   help="scheduler class to run: a lab file (its Scheduler), FILE:CLASS or package.module.Class "
                        "(default: mini_vllm's)")
    p.add_argument("--block-pool", default=None, metavar="FILE[:CLASS]",
                   help="block pool class to allocate from: a lab file (its BlockPool), FILE:CLASS or "
                        "package.module.Class (default: mini_vllm's)")


TRACE_LEGEND = (
    "Columns: step = engine step number; sched = request:tokens computed this step (a prefill chunk or "
    "1 for a decode); running / waiting = queue sizes after the step; blocks = KV blocks held / usable; "
    "preempted = requests evicted this step (recomputed later); finished = requests done this step. "
    "Requests are named A, B, C... in prompt order."
)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="python -m mini_vllm", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="complete one prompt", formatter_class=fmt)
    gen.add_argument("prompt")
    gen.add_argument("--max-tokens", type=int, default=16)
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--min-p", type=float, default=0.0)
    gen.add_argument("--request-seed", type=int, default=None, help="SamplingParams.seed")
    gen.add_argument("--ignore-eos", action="store_true")
    _engine_args(gen)
    tr = sub.add_parser("trace", help="print one line per engine step", formatter_class=fmt,
                        description=TRACE_LEGEND)
    tr.add_argument("prompts", nargs="+")
    tr.add_argument("--max-tokens", type=int, default=4)
    tr.add_argument("--show-text", action="store_true", help="after the trace, print each completion")
    _engine_args(tr)
    sv = sub.add_parser("serve", help="an OpenAI-compatible HTTP server (pip install -e '.[serve]')",
                        formatter_class=fmt)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--served-model-name", default=None, help="the model name clients send (default: --model)")
    sv.add_argument("--enable-auto-tool-choice", action="store_true", help="parse tool calls when a request has tools")
    sv.add_argument("--tool-call-parser", choices=["hermes"], default=None)
    _engine_args(sv)
    return parser


def _engine(args) -> LLMEngine:
    return LLMEngine(
        block_size=args.block_size, num_blocks=args.num_blocks, max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.budget,
        long_prefill_token_threshold=args.threshold, enable_prefix_caching=not args.no_prefix_caching,
        model=args.model, seed=args.seed, scheduler_cls=args.scheduler, block_pool_cls=args.block_pool,
    )


def request_names(n: int) -> list[str]:
    return [string.ascii_uppercase[i] if i < 26 else f"r{i}" for i in range(n)]


def cmd_generate(args) -> int:
    params = SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                            seed=args.request_seed, max_tokens=args.max_tokens, ignore_eos=args.ignore_eos)
    (out,) = _engine(args).generate([args.prompt], params)
    if out.finish_reason == "error":
        print(f"error: {out.stop_reason}", file=sys.stderr)
        return 1
    print(f"text: {out.text!r}")
    print(f"token_ids: {out.output_token_ids}")
    print(f"finish_reason: {out.finish_reason}")
    return 0


def cmd_trace(args) -> int:
    engine = _engine(args)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, ignore_eos=True)
    for name, prompt in zip(request_names(len(args.prompts)), args.prompts):
        engine.add_request(prompt, params, request_id=name)
    usable = args.num_blocks - 1
    print(f"# {TRACE_LEGEND}")
    while engine.has_unfinished_requests():
        engine.step()
        s = engine.step_stats[-1]
        sched = " ".join(f"{rid}:{n}" for rid, n in s.num_scheduled_tokens.items()) or "-"
        print(f"step {s.step:3d} | sched {sched} | running {s.num_running} waiting {s.num_waiting} | "
              f"blocks {usable - s.num_free_blocks}/{usable} | "
              f"preempted {','.join(s.preempted_req_ids) or '-'} | finished {','.join(s.finished_req_ids) or '-'}")
    if args.show_text:
        for name, out in engine.finished_outputs.items():
            print(f"{name}: {out.prompt!r} -> {out.text!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            try:
                from mini_vllm.entrypoints.openai_server import serve
            except ImportError as exc:
                raise ImportError(f"serve needs fastapi and uvicorn: pip install -e '.[serve]' ({exc})") from exc

            return serve(args, _engine(args))
        return cmd_generate(args) if args.command == "generate" else cmd_trace(args)
    except (ValueError, TypeError, ImportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
