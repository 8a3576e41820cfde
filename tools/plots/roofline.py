#!/usr/bin/env python3
"""Phase 00 §8: the roofline of an A100 and an H100, with decode and prefill placed on it.

A forward step over ``T`` tokens of a dense fp16 model does ``2 · n_params · T`` FLOPs and
reads the ``2 · n_params`` bytes of weights once, so its arithmetic intensity is ``T``
FLOPs per byte. Attainable throughput is ``min(peak, intensity × bandwidth)``.

Run: ``python tools/plots/roofline.py`` → ``phase-00-foundations/figures/roofline.png``.
"""
from __future__ import annotations

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import ROOT, pyplot, save

OUT = ROOT / "phase-00-foundations" / "figures" / "roofline.png"

# Dense fp16/bf16 tensor-core peak and HBM bandwidth, as phase 00 states them.
GPUS = {"A100": (312e12, 2.0e12), "H100 SXM": (989e12, 3.35e12)}
POINTS = {"decode, batch 1": 1, "decode, batch 64": 64, "prefill, 2,048 tokens": 2048}


def attainable(peak: float, bandwidth: float, intensity: float) -> float:
    """FLOP/s reachable at ``intensity`` FLOPs per byte: the lower of the two roofs."""
    return min(peak, intensity * bandwidth)


def data() -> dict:
    out = {}
    for gpu, (peak, bw) in GPUS.items():
        out[gpu] = {
            "ridge": peak / bw,
            "points": {name: {"intensity": t,
                              "tflops": attainable(peak, bw, t) / 1e12,
                              "fraction_of_peak": attainable(peak, bw, t) / peak}
                       for name, t in POINTS.items()},
        }
    return out


def draw(d: dict, path=OUT):
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    xs = np.logspace(0, 4, 200)
    for gpu, (peak, bw) in GPUS.items():
        ax.plot(xs, [attainable(peak, bw, x) / 1e12 for x in xs], label=f"{gpu} (ridge {d[gpu]['ridge']:.0f})")
    for name, p in d["A100"]["points"].items():
        ax.plot(p["intensity"], p["tflops"], "o", color="black")
        ax.annotate(f"{name}\n{p['tflops']:.0f} TFLOP/s", (p["intensity"], p["tflops"]),
                    textcoords="offset points", xytext=(6, 6) if p["intensity"] == 1 else (6, -18), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte of HBM traffic)")
    ax.set_ylabel("attainable TFLOP/s")
    ax.set_title("Roofline: decode sits on the bandwidth slope (points: A100)")
    ax.legend(loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, path)


def main() -> None:
    d = data()
    for gpu, g in d.items():
        print(f"{gpu}: ridge {g['ridge']:.1f} FLOP/byte")
        for name, p in g["points"].items():
            print(f"  {name:24s} {p['tflops']:8.1f} TFLOP/s  {100 * p['fraction_of_peak']:6.2f}% of peak")
    draw(d)


if __name__ == "__main__":
    main()
