"""Local test models for the GPU labs, and a clean way to run real vLLM on them.

GPU tests must never download: a rented box may have no network, and a hub outage must
not fail a course. So the tests build what they need here, in a temporary folder:

- a byte-level BPE tokenizer trained in a second on a few sentences (``tokenizers``);
- a tiny random-weight Llama (``transformers.LlamaConfig``) and a tiny Mixtral-style MoE,
  saved in Hugging Face format so ``vllm.LLM(model=path)`` loads them like any checkpoint.

:func:`run_vllm` runs one ``vllm.LLM`` in a child process. Each lab may want a fresh engine
(different memory share, eager vs graphs, fp8 vs fp16), and a child process is the only
reliable way to give its GPU memory back and to capture the startup log the labs parse.
:func:`run_child` forks that process from a server that has imported vLLM once
(:mod:`course.forkserver`), so an engine does not pay Python's start-up and
``import vllm`` again; ``MINI_VLLM_FORK=0`` starts a new interpreter per engine instead.

Nothing in this module imports torch, transformers or vllm at import time: the CPU test
suite imports the root conftest, which imports this module's names lazily.
"""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "paged attention stores the kv cache in fixed size blocks",
    "the scheduler decides which requests run at every step",
    "hello world, this is a tiny model with random weights",
]

VLLM_ENV_FILE = Path(__file__).with_name("vllm.env")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of ``path`` (``#`` comments and blank lines skipped), in order."""
    env = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{path.name}:{n}: expected KEY=VALUE, got {line!r}")
        env[key] = value
    return env


# Environment for vLLM in a child process (offline, engine core in-process, no flashinfer
# sampler): course/vllm.env says why, and the GPU-box scripts source the same file.
VLLM_ENV = read_env_file(VLLM_ENV_FILE)


def build_tokenizer(dest: Path, vocab_size: int = 512) -> None:
    """Train a byte-level BPE tokenizer on ``CORPUS`` and save it HF-style into ``dest``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join(CORPUS)] * 20, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>").save_pretrained(dest)


def _build(dest: Path | str, arch: str, vocab_size: int, seed: int, **config) -> Path:
    """Save a random-weight ``transformers`` model of class ``{arch}ForCausalLM`` in bf16,
    with the local tokenizer, unless ``dest`` already holds one."""
    import torch
    import transformers

    dest = Path(dest)
    if (dest / "config.json").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    build_tokenizer(dest, vocab_size)
    cfg = getattr(transformers, f"{arch}Config")(vocab_size=vocab_size, bos_token_id=0, eos_token_id=1,
                                                 tie_word_embeddings=False, **config)
    torch.manual_seed(seed)
    getattr(transformers, f"{arch}ForCausalLM")(cfg).to(torch.bfloat16).save_pretrained(dest)
    return dest


def build_tiny_llama(dest: Path | str, vocab_size: int = 512, hidden_size: int = 256, num_layers: int = 2,
                     num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 512,
                     max_position_embeddings: int = 2048, seed: int = 0) -> Path:
    """A random Llama (GQA, RoPE, SwiGLU) in bf16 with a local tokenizer; about 2 MB."""
    return _build(dest, "Llama", vocab_size, seed, hidden_size=hidden_size, intermediate_size=intermediate_size,
                  num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
                  max_position_embeddings=max_position_embeddings)


def build_tiny_moe(dest: Path | str, vocab_size: int = 512, hidden_size: int = 256, num_layers: int = 2,
                   num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 512,
                   num_experts: int = 8, top_k: int = 2, seed: int = 0) -> Path:
    """A random Mixtral-style MoE (8 experts, top-2) in bf16 with a local tokenizer."""
    return _build(dest, "Mixtral", vocab_size, seed, hidden_size=hidden_size, intermediate_size=intermediate_size,
                  num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
                  num_local_experts=num_experts, num_experts_per_tok=top_k, max_position_embeddings=2048)


@dataclass
class VllmRun:
    """What one child-process vLLM run produced."""

    outputs: list[dict] = field(default_factory=list)  # prompt, token_ids, text, finish_reason
    log: str = ""
    startup_s: float = 0.0
    generate_s: float = 0.0
    extra: dict = field(default_factory=dict)
    returncode: int = 0


_CHILD = textwrap.dedent('''
    import json, sys, time
    spec = json.loads(sys.stdin.read())
    from vllm import LLM, SamplingParams
    t0 = time.perf_counter()
    llm = LLM(model=spec["model"], **spec["llm_kwargs"])
    t1 = time.perf_counter()
    sp = SamplingParams(**spec["sampling"])
    extra = {}
    for _ in range(spec.get("warmup", 0)):
        llm.generate(spec["prompts"][:1], sp, use_tqdm=False)
    t2 = time.perf_counter()
    outs = llm.generate(spec["prompts"], sp, use_tqdm=False)
    t3 = time.perf_counter()
    if spec.get("metrics"):
        extra["metrics"] = {m.name: m.value for m in llm.get_metrics() if hasattr(m, "value")}
    res = {"startup_s": t1 - t0, "generate_s": t3 - t2, "extra": extra,
           "outputs": [{"prompt": o.prompt, "token_ids": list(o.outputs[0].token_ids),
                        "text": o.outputs[0].text, "finish_reason": o.outputs[0].finish_reason,
                        "num_cached_tokens": getattr(o, "num_cached_tokens", None)} for o in outs]}
    print("@@RESULT@@" + json.dumps(res), flush=True)
''')


RESULT_MARK = "@@RESULT@@"


# What the fork server imports before it forks: torch, ``vllm.LLM``, and the modules every
# engine imports inside ``LLM()`` (engine core, scheduler, GPU worker and model runner, the
# Llama model, the FlashAttention backend). On the H100 (2026-12-05,
# tools/gpu_box/startup_profile.py) the deeper list made the server's import 27.5 s instead
# of 18.0 s and each forked eager engine 9.3-9.7 s instead of 15.7-16.3 s; a fresh Python
# took 38-39 s. None of these imports touches CUDA (the server checks).
FORK_PRELOAD = ("torch", "vllm", "vllm.entrypoints.llm", "vllm.v1.engine.core", "vllm.v1.core.sched.scheduler",
                "vllm.v1.worker.gpu_worker", "vllm.v1.worker.gpu_model_runner", "vllm.model_executor.models.llama",
                "vllm.v1.attention.backends.flash_attn")
# The architectures of the tiny models; see warm_model_info.
WARM_ARCHS = ("LlamaForCausalLM", "MixtralForCausalLM")
_server = None          # the session's ForkServer, started on first use
_server_error = None    # why it could not start, once it failed (then: a fresh Python per call)
CHILD_COUNTS = {"forked": 0, "fresh": 0}  # how run_child started its children this session
CHILD_RUNS: list[dict] = []  # one entry per child: the test that asked, forked or fresh, wall seconds


def fork_server():
    """The session's :class:`~course.forkserver.ForkServer`, or None to use a fresh Python.

    ``MINI_VLLM_FORK=0`` turns it off; ``MINI_VLLM_FORK_PRELOAD`` (comma-separated) names
    other modules to import first. When it cannot start (no vllm on this machine, or
    importing it touched CUDA) every call falls back to a fresh interpreter, and the
    reason is printed once.
    """
    global _server, _server_error
    if os.environ.get("MINI_VLLM_FORK", "1") == "0" or _server_error is not None:
        return None
    if _server is not None and _server.alive():
        return _server
    from course.forkserver import ForkServer, ForkServerError

    preload = [m for m in os.environ.get("MINI_VLLM_FORK_PRELOAD", ",".join(FORK_PRELOAD)).split(",") if m]
    try:
        _server = ForkServer(preload, env=_child_env(None))
    except ForkServerError as exc:
        _server_error = str(exc).splitlines()[0]
        print(f"mini_vllm: no fork server ({_server_error}); each engine starts a fresh Python", file=sys.stderr)
        return None
    atexit.register(_server.close)
    return _server


_WARM_CHILD = textwrap.dedent('''
    import json, sys
    from vllm.model_executor.models import registry
    # Upstream inspects a model class in a fresh Python so that its own process never
    # initializes CUDA. This child exits right after, so it inspects in-process; upstream's
    # code still hashes the model file and writes the cache.
    registry._run_in_subprocess = lambda fn: fn()
    print("@@RESULT@@" + json.dumps({arch: registry.ModelRegistry._try_inspect_model_cls(arch) is not None
                                     for arch in json.loads(sys.stdin.read())}), flush=True)
''')


def warm_model_info(archs=WARM_ARCHS) -> dict | None:
    """Fill vLLM's model-info cache for ``archs`` in a child forked from the server.

    The first engine of an architecture on a machine inspects its model class in a new
    Python that imports vLLM again, and caches the answer under ``~/.cache/vllm/modelinfos``:
    vllm/model_executor/models/registry.py:910@0decac0 ("mi = _run_in_subprocess(") and
    vllm/model_executor/models/registry.py:919@0decac0 ("self._save_modelinfo_to_cache(mi, module_hash)").
    On a fresh H100 box (2026-12-05) that took 31.0 s, inside whichever test came first.
    Done here once per session, in a child that already has vLLM imported, every engine
    finds the cache warm. Returns {arch: found}, or None without a fork server.
    """
    if fork_server() is None:
        return None
    result, log, returncode = run_child(_WARM_CHILD, list(archs), timeout=300)
    if result is None:
        print(f"mini_vllm: model-info warm-up failed (exit {returncode}): {log.strip().splitlines()[-1:]}",
              file=sys.stderr)
    return result


def reset_fork_server() -> None:
    """Stop the session's fork server and forget why it failed (for tests)."""
    global _server, _server_error
    if _server is not None:
        _server.close()
    _server, _server_error = None, None


def _child_env(env: dict | None) -> dict:
    repo = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    return {**os.environ, **VLLM_ENV, "PYTHONPATH": path, **(env or {})}


def _note_child(how: str, t0: float) -> None:
    CHILD_COUNTS[how] += 1
    test = os.environ.get("PYTEST_CURRENT_TEST", "(session warm-up)").rsplit(" (", 1)[0]
    CHILD_RUNS.append({"test": test, "how": how, "wall_s": round(time.perf_counter() - t0, 1)})


def run_child(code: str, payload, env: dict | None = None, timeout: float = 300) -> tuple[object, str, int]:
    """Run ``code`` as ``python -c code`` in a fresh process, with ``payload`` as JSON on stdin.

    The child reports by printing one line ``RESULT_MARK + json``. Returns (that value, or
    None when no such line came; the whole log, stdout and stderr; the exit code), and
    raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds. A fresh process is how a
    GPU lab gets a clean GPU: vLLM does not free its KV cache in a process that keeps
    running. The process is forked from the fork server, which has imported vLLM already
    (:mod:`course.forkserver`), unless the server is off or ``env`` changes a variable
    that an import reads; then it is a new interpreter. The repo root is on its path.
    Either way the child's environment is this process's, plus vLLM's, plus ``env``.
    """
    from course.forkserver import import_time_keys

    child_env = _child_env(env)
    server = fork_server()
    t0 = time.perf_counter()
    # Only what the caller asks for decides. This process's own environment drifts once it
    # imports vLLM, vllm/env_override.py:105@0decac0 ("TORCHINDUCTOR_COMPILE_THREADS"); the
    # server made the same imports, and the child still gets the drifted values.
    if server is not None and not import_time_keys(server.env, {**server.env, **(env or {})}):
        answer = server.run(code, payload, child_env, timeout=timeout)
        log, returncode = answer["log"], answer["returncode"]
        _note_child("forked", t0)
        if answer["timed_out"]:
            raise subprocess.TimeoutExpired(["fork server child"], timeout, output=log)
    else:
        try:
            proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(payload), capture_output=True,
                                  text=True, env=child_env, timeout=timeout)
        finally:
            _note_child("fresh", t0)
        log, returncode = proc.stdout + proc.stderr, proc.returncode
    result = None
    for line in log.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    return result, log, returncode


def run_vllm(model: str | Path, prompts: list[str], llm_kwargs: dict | None = None, sampling: dict | None = None,
             env: dict | None = None, warmup: int = 0, metrics: bool = False, timeout: float = 300) -> VllmRun:
    """Run ``vllm.LLM(model, **llm_kwargs).generate(prompts)`` in a child process.

    Returns the outputs, the timings and the child's whole log (stdout + stderr), which is
    where vLLM prints the KV-cache size, the chosen attention backend and graph capture.
    """
    llm_kwargs = {"gpu_memory_utilization": 0.3, "max_model_len": 512, **(llm_kwargs or {})}
    if metrics:
        llm_kwargs.setdefault("disable_log_stats", False)  # LLM turns stats off by default
    spec = {"model": str(model), "prompts": prompts, "llm_kwargs": llm_kwargs,
            "sampling": {"max_tokens": 16, "temperature": 0.0, **(sampling or {})},
            "warmup": warmup, "metrics": metrics}
    t = time.perf_counter()
    data, log, returncode = run_child(_CHILD, spec, env=env, timeout=timeout)
    run = VllmRun(log=log, returncode=returncode)
    if data:
        run.outputs, run.startup_s, run.generate_s, run.extra = (
            data["outputs"], data["startup_s"], data["generate_s"], data["extra"])
    if returncode != 0 or not run.outputs:
        tail = "\n".join(log.splitlines()[-40:])
        raise RuntimeError(f"vLLM child process failed (exit {returncode}, {time.perf_counter() - t:.0f}s):\n{tail}")
    return run


def environment_info() -> dict:
    """GPU, driver and library versions, for the "Seen on H100" records, and how many
    children ``run_child`` forked from the server or started as a fresh Python."""
    info: dict = {"date": time.strftime("%Y-%m-%d"), "children": dict(CHILD_COUNTS), "child_runs": list(CHILD_RUNS)}
    if _server is not None:
        info["fork_server_import_s"] = _server.import_s
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        info["gpu"], info["driver"], info["gpu_memory"] = [s.strip() for s in smi.splitlines()[0].split(",")]
    except (OSError, IndexError, ValueError, subprocess.SubprocessError):
        pass
    for mod in ("torch", "triton", "vllm", "transformers"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing library is simply not reported
            pass
    return info
