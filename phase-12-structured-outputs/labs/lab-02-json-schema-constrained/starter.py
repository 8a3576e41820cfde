"""Lab 12-02: measure JSON-schema-constrained generation, on mini_vllm and on vLLM.

The grader is what you write (TODOs 1-5, README "Tasks"): a strict checker for the schema subset, a
verdict per output, counts per arm, the first-request compile cost, and an audit that
refuses truncated outputs. The two arms are given: ``mini_arms`` runs mini_vllm's tiny
model with and without ``structured_outputs``; the GPU test runs the same protocol on
vLLM 0.22.1 with a local random-weight Llama.
"""

from __future__ import annotations

import json
import statistics
import sys

from course.lab_support.phase_12 import print_report
from mini_vllm.engine import LLM
from mini_vllm.sampler import SamplingParams
from mini_vllm.structured_output import StructuredOutputsParams

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "class": {"enum": ["wizard", "rogue", "bard"]},
        "alive": {"type": "boolean"},
    },
    "required": ["name", "class", "alive"],
    "additionalProperties": False,
}
PROMPTS = [f"Character sheet {i} as JSON:" for i in range(12)]
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def mini_arms(max_tokens: int = 64, prompts: list[str] = PROMPTS, seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """``{"free": [(text, finish_reason)], "guided": [...]}`` from mini_vllm's tiny model,
    temperature 0.8, the same seeds in both arms."""
    llm = LLM(model="tiny", seed=seed)
    arms = {}
    for arm, so in (("free", None), ("guided", StructuredOutputsParams(json=SCHEMA))):
        params = SamplingParams(temperature=0.8, max_tokens=max_tokens, structured_outputs=so)
        arms[arm] = [(o.text, o.finish_reason) for o in llm.generate(prompts, params)]
    return arms


def check_instance(instance, schema: dict, path: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema`` (subset: type, properties, required,
    additionalProperties: false, enum, minLength/maxLength, items, minItems/maxItems),
    each message starting with its JSON path. Empty means valid."""
    raise NotImplementedError("TODO 1: list every way an instance breaks the schema (README task 1)")


def judge(text: str, schema: dict) -> str:
    """"valid" (parses, fits); "schema" (parses, does not fit); "wrapped" (does not parse,
    but the span from the first ``{`` to the last ``}`` does: JSON inside chat or a code
    fence); "not-json" otherwise."""
    raise NotImplementedError("TODO 2: give one output its verdict (README task 2)")


def validity(texts: list[str], schema: dict) -> dict[str, int]:
    """Verdict counts, all four keys present, in the order valid, schema, wrapped, not-json."""
    raise NotImplementedError("TODO 3: count the verdicts of an arm (README task 3)")


def compile_overhead_ms(latencies_s: list[float]) -> float:
    """The first constrained request's extra latency: first minus the median of the rest,
    in milliseconds. Needs at least two latencies."""
    raise NotImplementedError("TODO 4: measure the first request's extra latency (README task 4)")


def audit(outputs: list[tuple[str, str]], schema: dict) -> list[str]:
    """Per ``(text, finish_reason)``: "truncated" when the reason is "length" (whatever the
    text looks like), else "ok" for a valid text and the ``judge`` verdict otherwise."""
    raise NotImplementedError("TODO 5: audit outputs with their finish reasons (README task 5)")


def report(lab) -> dict:
    arms = lab.mini_arms()
    tight = lab.mini_arms(max_tokens=10, prompts=PROMPTS[:4])["guided"]
    return {
        "free arm (mini, 12 prompts)": lab.validity([t for t, _ in arms["free"]], SCHEMA),
        "guided arm (mini, 12 prompts)": lab.validity([t for t, _ in arms["guided"]], SCHEMA),
        "guided sample": arms["guided"][0][0],
        "max_tokens=10 audit": lab.audit(tight, SCHEMA),
        "max_tokens=10 sample": f"{tight[0][0]!r} ({tight[0][1]})",
    }


if __name__ == "__main__":
    print_report(report(sys.modules[__name__]))
