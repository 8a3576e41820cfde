#!/usr/bin/env python3
"""Phase 05: what padding a batch up to the next CUDA-graph capture size costs.

A decode batch of ``n`` tokens replays the graph captured for the smallest capture size
``>= n``; the extra rows are computed and thrown away. The ladder is vLLM's default
(``mini_vllm.cudagraph.default_capture_sizes``: 1, 2, 4, every 8 below 256, every 16 from
256), topped at ``min(2 · max_num_seqs, 512)``.

Also here: the Triton backend's split-KV switch (phase 04). Below ``seq_threshold_3D``
sequences a decode batch uses the 3D (split-KV) kernel. The threshold starts as
``128 // num_kv_heads`` and, when decode CUDA graphs are on, is snapped to the *closest*
capture size (``vllm/v1/attention/backends/triton_attn.py:178@0decac0 ("self.seq_threshold_3D = min(")``).

Run: ``python tools/plots/capture_padding.py`` → ``phase-05-cuda-graphs-and-torch-compile/figures/capture_padding.png``.
"""
from __future__ import annotations

import _common  # noqa: F401
from _common import ROOT, pyplot, save

from mini_vllm.cudagraph import default_capture_sizes, max_cudagraph_capture_size, select_capture_size

OUT = ROOT / "phase-05-cuda-graphs-and-torch-compile" / "figures" / "capture_padding.png"
MIN_LAUNCH_GRID_SIZE_2D = 128


def triton_seq_threshold(num_kv_heads: int, capture_sizes: list[int] | None) -> int:
    threshold = MIN_LAUNCH_GRID_SIZE_2D // num_kv_heads
    if capture_sizes:
        threshold = min(capture_sizes, key=lambda x: abs(x - threshold))
    return threshold


def data(max_num_seqs: int = 256, max_num_batched_tokens: int = 8192) -> dict:
    top = max_cudagraph_capture_size(max_num_seqs, max_num_batched_tokens)
    sizes = default_capture_sizes(top, max_num_batched_tokens)
    padded = {n: select_capture_size(sizes, n) for n in range(1, top + 1)}
    waste = {n: (p - n) / p for n, p in padded.items()}
    worst = max(waste, key=lambda n: (waste[n], -n))
    return {
        "top": top,
        "num_sizes": len(sizes),
        "sizes": sizes,
        "padded": padded,
        "waste": waste,
        "mean_waste": sum(waste.values()) / len(waste),
        "mean_waste_above_8": sum(w for n, w in waste.items() if n > 8) / (top - 8),
        "worst_n": worst,
        "worst_waste": waste[worst],
        "triton_threshold": {h: (MIN_LAUNCH_GRID_SIZE_2D // h, triton_seq_threshold(h, sizes))
                             for h in (1, 2, 3, 4, 5, 8, 16)},
    }


def draw(d: dict, path=OUT):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ns = list(d["waste"])
    ax.plot(ns, [100 * d["waste"][n] for n in ns], lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("decode batch (tokens)")
    ax.set_ylabel("padded rows, % of the replayed graph")
    ax.set_title(f"Padding to the next of {d['num_sizes']} capture sizes (top {d['top']}); "
                 f"mean {100 * d['mean_waste']:.1f}%")
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, path)


def main() -> None:
    d = data()
    print(f"{d['num_sizes']} capture sizes up to {d['top']}: {d['sizes'][:8]} ... {d['sizes'][-3:]}")
    print(f"mean padding over batches 1..{d['top']}: {100 * d['mean_waste']:.2f}%; "
          f"above 8: {100 * d['mean_waste_above_8']:.2f}%")
    print(f"worst: batch {d['worst_n']} pads to {d['padded'][d['worst_n']]} ({100 * d['worst_waste']:.1f}%)")
    for n in (3, 5, 9, 17, 257):
        print(f"  batch {n} -> {d['padded'][n]}")
    for h, (raw, snapped) in d["triton_threshold"].items():
        print(f"Triton split-KV threshold, {h} KV heads: 128 // {h} = {raw} -> snapped {snapped}")
    draw(d)


if __name__ == "__main__":
    main()
