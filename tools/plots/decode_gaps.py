#!/usr/bin/env python3
"""Phase 03: what a long prefill does to a decoding request's inter-token gaps.

Request A (8-token prompt) is prefilled in step 1 and then decodes one token per step.
Before step 2, request B arrives with a ``long_prompt``-token prompt. Each step the
scheduler serves running requests first (A's one decode token), then B's prefill, cut to
``long_prefill_token_threshold`` tokens when that is set (0 = no cap) and to the token
budget. A step's duration is proxied by the tokens it computes, as in phase 03 lab 05,
whose recorded vLLM schedules this model reproduces for a 256-token B.

Run: ``python tools/plots/decode_gaps.py`` → ``phase-03-continuous-batching-scheduler/figures/decode_gaps.png``.
"""
from __future__ import annotations

import _common  # noqa: F401
from _common import ROOT, pyplot, save

OUT = ROOT / "phase-03-continuous-batching-scheduler" / "figures" / "decode_gaps.png"


def victim_gaps(long_prompt: int, threshold: int, budget: int = 8192,
                victim_prompt: int = 8, max_tokens: int = 16) -> list[int]:
    """Tokens in each step that yields one of A's tokens after its first."""
    assert victim_prompt <= budget
    a_tokens = 1                       # step 1 prefills A and samples its first token
    b_left = long_prompt
    gaps = []
    while a_tokens < max_tokens:
        left = budget - 1              # A's decode token goes first
        chunk = min(b_left, left, threshold or b_left)
        b_left -= chunk
        # B decoding (after its prefill) adds one token per step; it also generates
        # max_tokens, and the victim stops first only when B started later.
        b_decode = 1 if chunk == 0 and long_prompt > 0 else 0
        gaps.append(1 + chunk + b_decode)
        a_tokens += 1
    return gaps


def data(long_prompt: int = 2048, thresholds=(0, 64, 256, 512), max_tokens: int = 40) -> dict:
    curves = {t: victim_gaps(long_prompt, t, max_tokens=max_tokens) for t in thresholds}
    return {
        "long_prompt": long_prompt,
        "curves": curves,
        "worst": {t: max(g) for t, g in curves.items()},
        "mean": {t: sum(g) / len(g) for t, g in curves.items()},
        "lab05_th0": victim_gaps(256, 0),
        "lab05_th32": victim_gaps(256, 32),
    }


def draw(d: dict, path=OUT):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for t, gaps in d["curves"].items():
        label = "no threshold" if t == 0 else f"threshold {t}"
        ax.step(range(2, 2 + len(gaps)), gaps, where="mid", label=f"{label} (worst {max(gaps)})")
    ax.set_yscale("log")
    ax.set_xlabel("A's output token index")
    ax.set_ylabel("tokens computed in the step (gap proxy)")
    ax.set_title(f"A decoding while B prefills {d['long_prompt']} tokens")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, path)


def main() -> None:
    d = data()
    for t, g in d["curves"].items():
        print(f"threshold {t:4d}: worst {d['worst'][t]:5d}  mean {d['mean'][t]:7.2f}  gaps {g}")
    print("lab 05 (B = 256): th0", d["lab05_th0"], " th32", d["lab05_th32"])
    draw(d)


if __name__ == "__main__":
    main()
