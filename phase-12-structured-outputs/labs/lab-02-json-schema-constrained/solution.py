"""Lab 12-02 (reference): measure JSON-schema-constrained generation, on mini_vllm and on vLLM.

The grader (tasks 1-5) is what you write: a strict checker for the schema subset, a
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
    if "enum" in schema:
        ok = any(instance == v and type(instance) is type(v) for v in schema["enum"])
        return [] if ok else [f"{path}: {instance!r} is not one of {schema['enum']}"]
    kind = schema.get("type")
    if kind == "integer":
        ok = isinstance(instance, int) and not isinstance(instance, bool)
    elif kind == "number":
        ok = isinstance(instance, (int, float)) and not isinstance(instance, bool)
    elif kind == "null":
        ok = instance is None
    elif kind in _TYPES:
        ok = isinstance(instance, _TYPES[kind])
    else:
        ok = True
    if not ok:
        return [f"{path}: expected {kind}, got {type(instance).__name__}"]
    errors: list[str] = []
    if kind == "object":
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in instance:
                errors.append(f"{path}: missing required property {name!r}")
        for name, value in instance.items():
            if name in props:
                errors += check_instance(value, props[name], f"{path}.{name}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: unexpected property {name!r}")
    elif kind == "string":
        if len(instance) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than minLength {schema['minLength']}")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append(f"{path}: longer than maxLength {schema['maxLength']}")
    elif kind == "array":
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than minItems {schema['minItems']}")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: more than maxItems {schema['maxItems']}")
        for i, item in enumerate(instance):
            errors += check_instance(item, schema.get("items", {}), f"{path}[{i}]")
    return errors


def judge(text: str, schema: dict) -> str:
    """"valid" (parses, fits); "schema" (parses, does not fit); "wrapped" (does not parse,
    but the span from the first ``{`` to the last ``}`` does: JSON inside chat or a code
    fence); "not-json" otherwise."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                json.loads(text[start : end + 1])
                return "wrapped"
            except json.JSONDecodeError:
                pass
        return "not-json"
    return "schema" if check_instance(doc, schema) else "valid"


def validity(texts: list[str], schema: dict) -> dict[str, int]:
    """Verdict counts, all four keys present, in the order valid, schema, wrapped, not-json."""
    counts = {"valid": 0, "schema": 0, "wrapped": 0, "not-json": 0}
    for text in texts:
        counts[judge(text, schema)] += 1
    return counts


def compile_overhead_ms(latencies_s: list[float]) -> float:
    """The first constrained request's extra latency: first minus the median of the rest,
    in milliseconds. Needs at least two latencies."""
    if len(latencies_s) < 2:
        raise ValueError("need the first request and at least one warm one")
    return (latencies_s[0] - statistics.median(latencies_s[1:])) * 1000.0


def audit(outputs: list[tuple[str, str]], schema: dict) -> list[str]:
    """Per ``(text, finish_reason)``: "truncated" when the reason is "length" (whatever the
    text looks like), else "ok" for a valid text and the ``judge`` verdict otherwise."""
    verdicts = []
    for text, reason in outputs:
        if reason == "length":
            verdicts.append("truncated")
        else:
            verdict = judge(text, schema)
            verdicts.append("ok" if verdict == "valid" else verdict)
    return verdicts


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
