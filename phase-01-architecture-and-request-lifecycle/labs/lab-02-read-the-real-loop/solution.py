"""Lab 01-02 reference: line the mini engine's step up with the real one.

Three pieces:

1. ``probe_stages`` records which stage of ``mini_vllm.EngineCore.step`` runs, in order,
   during one step; ``upstream_line`` says where the same stage sits in
   vllm/v1/engine/core.py:428@0decac0 (EngineCore.step).
2. ``parse_iteration_line`` reads the per-step line real vLLM logs when
   ``enable_logging_iteration_details=True``
   (vllm/v1/engine/core.py:399@0decac0 (EngineCore.log_iteration_details)), and
   ``mini_iteration_log`` predicts those lines from the mini engine, using upstream's
   rule for "context" vs "generation" requests
   (vllm/v1/utils.py:693@0decac0 (compute_iteration_details)).
3. ``parse_kv_cache_report`` reads the two startup lines that report the KV-cache
   capacity (vllm/v1/core/kv_cache_utils.py:1709@0decac0 (_report_kv_cache_config)).
"""
from __future__ import annotations

import re
from typing import NamedTuple

from mini_vllm import EngineConfig, EngineCore, Request, SamplingParams

STAGES = ("schedule", "execute_model", "sample", "update_from_output")


def probe_stages(core: EngineCore) -> list[str]:
    """Run one ``core.step()`` and return the stage names in the order they ran.

    The four entry points are wrapped on this instance only (``sample`` once per
    sampled request) and restored afterwards, even if the step raises.
    """
    calls: list[str] = []
    targets = {
        "schedule": core.scheduler,
        "execute_model": core,
        "sample": core.sampler,
        "update_from_output": core.scheduler,
    }

    def wrap(name, original):
        def probe(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        return probe

    saved = {name: vars(owner).get(name) for name, owner in targets.items()}
    for name, owner in targets.items():
        setattr(owner, name, wrap(name, getattr(owner, name)))
    try:
        core.step()
    finally:
        for name, owner in targets.items():
            if saved[name] is None:
                delattr(owner, name)  # the class's method shows through again
            else:
                setattr(owner, name, saved[name])
    return calls


def upstream_line(stage: str) -> int:
    """Line of ``vllm/v1/engine/core.py`` at 0decac0 that runs ``stage`` in ``EngineCore.step``."""
    lines = {
        "schedule": 439,            # scheduler_output = self.scheduler.schedule()
        "execute_model": 440,       # future = self.model_executor.execute_model(scheduler_output, non_block=True)
        "sample": 448,              # model_output = self.model_executor.sample_tokens(grammar_output)
        "update_from_output": 453,  # engine_core_outputs = self.scheduler.update_from_output(
    }
    if stage not in lines:
        raise ValueError(f"unknown stage {stage!r}; stages are {STAGES}")
    return lines[stage]


class IterationDetails(NamedTuple):
    """One ``Iteration(i): ...`` log line, without its elapsed time."""

    num_context_requests: int
    num_context_tokens: int
    num_generation_requests: int
    num_generation_tokens: int


def parse_iteration_line(line: str) -> tuple[int, IterationDetails] | None:
    """``(iteration index, details)`` from a log line, or None if the line is not one."""
    pattern = (r"Iteration\((\d+)\): (\d+) context requests, (\d+) context tokens, "
               r"(\d+) generation requests, (\d+) generation tokens, iteration elapsed time: ([\d.]+) ms")
    m = re.search(pattern, line)
    if m is None:
        return None
    index, *counts = (int(g) for g in m.groups()[:5])
    return index, IterationDetails(*counts)


def iteration_details(scheduled: dict[str, int], num_output_tokens: dict[str, int]) -> IterationDetails:
    """Upstream's split of one step: a request is "context" while it has no output
    token yet (first chunk or a later prefill chunk), "generation" after that."""
    ctx = [n for rid, n in scheduled.items() if num_output_tokens[rid] == 0]
    gen = [n for rid, n in scheduled.items() if num_output_tokens[rid] > 0]
    return IterationDetails(len(ctx), sum(ctx), len(gen), sum(gen))


def mini_iteration_log(prompt_lens: list[int], max_tokens: int, **engine_kwargs) -> list[IterationDetails]:
    """Predict vLLM's iteration lines: run the mini engine on prompts of these lengths
    (greedy, EOS ignored) and classify every step as upstream does, reading each
    request's output count right after ``schedule()``."""
    core = EngineCore(EngineConfig.create(**engine_kwargs))
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    for i, n in enumerate(prompt_lens):
        core.add_request(Request(str(i), [97 + (i + j) % 26 for j in range(n)], params, eos_token_id=256))
    log: list[IterationDetails] = []
    original = core.scheduler.schedule

    def probed():
        out = original()
        outputs = {r.request_id: r.num_output_tokens for r in out.scheduled_requests}
        log.append(iteration_details(out.num_scheduled_tokens, outputs))
        return out

    core.scheduler.schedule = probed
    while core.has_unfinished_requests():
        core.step()
    return log


class KVCacheReport(NamedTuple):
    kv_cache_tokens: int
    max_model_len: int
    max_concurrency: float


def parse_kv_cache_report(log: str) -> KVCacheReport:
    """The KV-cache capacity lines vLLM prints once at startup.

    Upstream derives the token count from the concurrency:
    vllm/v1/core/kv_cache_utils.py:1731@0decac0 ("num_tokens = int(max_concurrency * max_model_len)").
    """
    tokens = re.search(r"GPU KV cache size: ([\d,]+) tokens", log)
    conc = re.search(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x", log)
    if tokens is None or conc is None:
        raise ValueError("no KV-cache report in this log (is it the engine's startup output?)")
    return KVCacheReport(int(tokens.group(1).replace(",", "")), int(conc.group(1).replace(",", "")),
                         float(conc.group(2)))


if __name__ == "__main__":
    for i, d in enumerate(mini_iteration_log([6], max_tokens=4)):
        print(f"Iteration({i}): {d.num_context_requests} context requests, {d.num_context_tokens} context tokens, "
              f"{d.num_generation_requests} generation requests, {d.num_generation_tokens} generation tokens")
