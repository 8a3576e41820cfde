"""Smoke probe of real vLLM on a GPU box: six engine configurations on the tiny local models.

    OUT=gpu-out python3 tools/gpu_box/probe.py

Builds the tiny Llama and MoE (course.gpu_fixtures), then starts vLLM six ways (CUDA
graphs, eager, TRITON_ATTN override, online fp8, prefix caching with metrics, the MoE) and
writes probe_summary.json (timings, first output, the log lines that matter) and
probe_logs.txt (every full log) into $OUT. Run it first on a new box: it shows in about
five minutes whether each feature the GPU labs rely on works there.
"""
import json, os, re, sys, time, traceback
# Runs on a bare GPU box before anything is pip-installed (vllm sits in /tmp/site, see
# prepare.py), so the repo root it is started from must be on the path for `course`.
sys.path.insert(0, os.getcwd())
from course.gpu_fixtures import build_tiny_llama, build_tiny_moe, run_vllm, environment_info
OUT = os.environ.get("OUT", "/tmp/out")
t = time.time(); L = build_tiny_llama("/tmp/tl"); M = build_tiny_moe("/tmp/tm"); print("build_s", time.time() - t, flush=True)
summary = {"env": environment_info()}
logs = open(os.path.join(OUT, "probe_logs.txt"), "w")
shared = " ".join(["the quick brown fox jumps over the lazy dog"] * 12)
cases = {
  "graphs": (L, {}, ["hello world"] * 8, {}),
  "eager": (L, {"enforce_eager": True}, ["hello world"] * 8, {}),
  "triton_attn": (L, {"enforce_eager": True, "attention_backend": "TRITON_ATTN"}, ["hello world"], {}),
  "fp8": (L, {"enforce_eager": True, "quantization": "fp8"}, ["hello world"] * 8, {}),
  "prefix": (L, {"enforce_eager": True, "enable_prefix_caching": True}, [shared + f" q{i}" for i in range(8)], {"metrics": True}),
  "moe": (M, {"enforce_eager": True}, ["hello world"] * 4, {}),
}
for name, (model, kw, prompts, extra) in cases.items():
    t = time.time()
    try:
        r = run_vllm(model, prompts, kw, metrics=extra.get("metrics", False), timeout=240)
        keep = [l for l in r.log.splitlines() if re.search(r"KV cache|blocks|concurrency|backend|Backend|graph|Graph|compil|memory|Memory|fp8|Fp8|quant|MoE|moe|prefix|Prefix|hit", l)]
        summary[name] = {"wall_s": round(time.time() - t, 1), "startup_s": r.startup_s, "generate_s": r.generate_s,
                         "tokens": r.outputs[0]["token_ids"], "finish": r.outputs[0]["finish_reason"],
                         "cached": [o["num_cached_tokens"] for o in r.outputs], "extra": r.extra, "lines": keep[:60]}
        logs.write(f"\n===== {name}\n{r.log}\n")
    except Exception as e:
        summary[name] = {"error": str(e)[-3000:], "wall_s": round(time.time() - t, 1)}
    print(name, summary[name].get("wall_s"), "error" in summary[name], flush=True)
    json.dump(summary, open(os.path.join(OUT, "probe_summary.json"), "w"), indent=1, default=str)
