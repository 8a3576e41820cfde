"""Lab 01-02: line the mini engine's step up with the real one. Your work: five functions.

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
    raise NotImplementedError("TODO 1: record the stages of one step, then put the engine back (README task 1)")


def upstream_line(stage: str) -> int:
    """Line of ``vllm/v1/engine/core.py`` at 0decac0 that runs ``stage`` in ``EngineCore.step``."""
    raise NotImplementedError("TODO 2: where each stage sits in upstream's EngineCore.step (README task 2)")


class IterationDetails(NamedTuple):
    """One ``Iteration(i): ...`` log line, without its elapsed time."""

    num_context_requests: int
    num_context_tokens: int
    num_generation_requests: int
    num_generation_tokens: int


def parse_iteration_line(line: str) -> tuple[int, IterationDetails] | None:
    """``(iteration index, details)`` from a log line, or None if the line is not one."""
    raise NotImplementedError("TODO 3: read one per-step log line (README task 3)")


def iteration_details(scheduled: dict[str, int], num_output_tokens: dict[str, int]) -> IterationDetails:
    """Upstream's split of one step: a request is "context" while it has no output
    token yet (first chunk or a later prefill chunk), "generation" after that."""
    raise NotImplementedError("TODO 4: split one step into context and generation work (README task 4)")


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
    raise NotImplementedError("TODO 5: read the startup KV-cache report (README task 5)")


if __name__ == "__main__":
    for i, d in enumerate(mini_iteration_log([6], max_tokens=4)):
        print(f"Iteration({i}): {d.num_context_requests} context requests, {d.num_context_tokens} context tokens, "
              f"{d.num_generation_requests} generation requests, {d.num_generation_tokens} generation tokens")
