"""Given code for phase 01's labs: the printers the labs' ``__main__`` blocks call. It
lives here once, so a lab's starter.py and solution.py do not carry two copies.
"""
from __future__ import annotations

from typing import Callable

from mini_vllm import SamplingParams


def print_batches(trace_batches: Callable, label_steps: Callable) -> None:
    """Lab 01-04's demo: two prompts under a budget of 8 tokens, one line per step."""
    ids, trace = trace_batches(["hello world", "goodbye"], max_tokens=4, max_num_batched_tokens=8)
    names = dict(zip(ids, "AB"))
    labels = label_steps(trace, {ids[0]: 11, ids[1]: 7})
    for i, (step, label) in enumerate(zip(trace, labels), 1):
        print(f"step {i}: {{{', '.join(f'{names[r]}: {n}' for r, n in step.items())}}}  {label}")


def print_stop_cases(run_until_stop: Callable, finish_reason: Callable, upstream_status_name: Callable,
                     eos: int = 256) -> None:
    """Lab 01-05's demo: five scripted streams and how each ends."""
    cases = [
        ("EOS mid-stream", [10, 20, eos, 30], SamplingParams(temperature=0.0, max_tokens=8)),
        ("ignore_eos", [10, 20, eos, 30, 40], SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)),
        ("EOS on the cap", [10, 20, eos], SamplingParams(temperature=0.0, max_tokens=3)),
        ("stop token 99", [10, 99, 20], SamplingParams(temperature=0.0, max_tokens=8, stop_token_ids=(99,))),
        ("stream runs dry", [10, 20], SamplingParams(temperature=0.0, max_tokens=8)),
    ]
    for label, stream, params in cases:
        r = run_until_stop(stream, eos, params)
        print(f"{label:>16}: output {r.output_token_ids}, {upstream_status_name(r.status)}, "
              f"finish_reason={finish_reason(r.status)!r}, stop_reason={r.stop_reason!r}")
