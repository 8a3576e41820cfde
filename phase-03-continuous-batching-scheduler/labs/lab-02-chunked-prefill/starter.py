"""Lab 03-02: chunked prefill changes when tokens are computed, not which.

Two halves: a closed form for how many steps a lone prompt's prefill takes, and a
driver for mini_vllm's engine that returns the generated token ids together with the
per-step schedule, so a test can show that the schedule changed and the tokens did not.
Your work: TODOs 1-3.
"""

from __future__ import annotations

from mini_vllm import LLMEngine, SamplingParams


def num_prefill_steps(prompt_len: int, long_prefill_token_threshold: int, max_num_batched_tokens: int) -> int:
    """Steps a prompt of ``prompt_len`` tokens needs when it has the budget to itself.

    Every step gives it ``min(threshold, budget)`` tokens (threshold 0 = off, so just the
    budget); the last chunk may be shorter, hence the ceiling. The step that computes the
    last prompt token also samples the first output token.
    """
    raise NotImplementedError("TODO 1: count the steps a lone prompt's prefill takes (README task 1)")


def generate(
    prompts: list[list[int]],
    max_tokens: int = 8,
    temperature: float = 0.0,
    **engine_kwargs,
) -> tuple[list[list[int]], list[dict[str, int]]]:
    """Run ``prompts`` through ``LLMEngine(**engine_kwargs)`` until all finish.

    Returns (output token ids per prompt, in input order; {request_id: scheduled tokens}
    for every step). Request ids are "0", "1", ... so a second engine gives the same
    requests the same ids, and with them the same per-request sampling generators.
    ``ignore_eos`` keeps every run the same length.
    """
    raise NotImplementedError("TODO 2: run the prompts on an engine and keep the schedule (README task 2)")


def measured_prefill_steps(schedule: list[dict[str, int]], request_id: str, prompt_len: int) -> int:
    """Steps from a request's first scheduled chunk to the step that completes its prompt."""
    raise NotImplementedError("TODO 3: count the steps a request's prefill took in a schedule (README task 3)")


if __name__ == "__main__":
    prompt = [(7 * i) % 250 + 1 for i in range(100)]
    for threshold, budget in [(0, 2048), (16, 2048), (64, 32)]:
        out, sched = generate([prompt], max_tokens=8, max_model_len=128, block_size=4, num_blocks=64,
                              long_prefill_token_threshold=threshold, max_num_batched_tokens=budget)
        print(f"threshold={threshold:<3} budget={budget:<5} prefill steps="
              f"{measured_prefill_steps(sched, '0', 100)} (formula {num_prefill_steps(100, threshold, budget)})"
              f"  chunks={[s['0'] for s in sched][:num_prefill_steps(100, threshold, budget)]}  tokens={out[0]}")
