#!/usr/bin/env python3
"""Phase 02 §2: how much reserved KV memory holds no token, contiguous vs paged.

A workload of 256 requests whose final lengths (prompt + output) follow a log-normal
distribution around 400 tokens, capped at ``max_model_len = 2048``. Three policies:

- **reserve max**: each request gets ``max_model_len`` slots when it arrives (the final
  length is unknown then), as engines before vLLM did;
- **paged, block size b**: each request holds ``ceil(len / b)`` blocks; only the last
  block is partly empty.

Waste = reserved slots that never hold a token, as a fraction of reserved slots. External
fragmentation (free space split into runs too short to use) is left out: it only makes
the contiguous numbers worse.

Run: ``python tools/plots/fragmentation.py`` → ``phase-02-paged-attention/figures/fragmentation.png``.
"""
from __future__ import annotations

import numpy as np

import _common  # noqa: F401
from _common import ROOT, pyplot, save

OUT = ROOT / "phase-02-paged-attention" / "figures" / "fragmentation.png"
MAX_MODEL_LEN = 2048
BLOCK_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def workload(n: int = 256, median: int = 400, sigma: float = 0.8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lengths = rng.lognormal(mean=np.log(median), sigma=sigma, size=n)
    return np.clip(np.round(lengths), 16, MAX_MODEL_LEN).astype(np.int64)


def reserved_waste(lengths: np.ndarray, reserve: int = MAX_MODEL_LEN) -> float:
    return 1.0 - lengths.sum() / (len(lengths) * reserve)


def paged_waste(lengths: np.ndarray, block_size: int) -> float:
    held = (-(-lengths // block_size) * block_size).sum()
    return 1.0 - lengths.sum() / held


def data() -> dict:
    lengths = workload()
    return {
        "n": int(len(lengths)),
        "mean_len": float(lengths.mean()),
        "max_len": int(lengths.max()),
        "reserve_max_waste": reserved_waste(lengths),
        "paged_waste": {b: paged_waste(lengths, b) for b in BLOCK_SIZES},
        # How many of these requests a 64k-slot pool admits at once under each policy.
        "admitted_64k_reserve": 65536 // MAX_MODEL_LEN,
        "admitted_64k_paged16": int(np.searchsorted(np.cumsum(-(-lengths // 16) * 16), 65536, side="right")),
    }


def draw(d: dict, path=OUT):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    bs = list(d["paged_waste"])
    ax.plot(bs, [100 * d["paged_waste"][b] for b in bs], "o-", label="paged: last block partly empty")
    ax.axhline(100 * d["reserve_max_waste"], color="tab:red", ls="--",
               label=f"reserve max_model_len: {100 * d['reserve_max_waste']:.1f}%")
    ax.annotate(f"block 16: {100 * d['paged_waste'][16]:.1f}%", (16, 100 * d["paged_waste"][16]),
                textcoords="offset points", xytext=(5, 10))
    ax.set_xscale("log", base=2)
    ax.set_xticks(bs, [str(b) for b in bs])
    ax.set_xlabel("block size (tokens)")
    ax.set_ylabel("reserved KV slots holding no token (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{d['n']} requests, mean length {d['mean_len']:.0f}, max_model_len 2048")
    ax.legend(loc="center right")
    ax.grid(True, alpha=0.3)
    return save(fig, path)


def main() -> None:
    d = data()
    print(f"{d['n']} requests, mean length {d['mean_len']:.1f}, longest {d['max_len']}")
    print(f"reserve max_model_len: {100 * d['reserve_max_waste']:.1f}% wasted")
    for b, w in d["paged_waste"].items():
        print(f"paged, block {b:3d}: {100 * w:5.2f}% wasted")
    print(f"64k-slot pool admits {d['admitted_64k_reserve']} requests reserving 2048, "
          f"{d['admitted_64k_paged16']} paged at block 16")
    draw(d)


if __name__ == "__main__":
    main()
