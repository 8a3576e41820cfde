#!/usr/bin/env python3
"""Phase 00 §8 and phase 04 §4: why FlashAttention is fast, in bytes.

Standard attention for one head materialises the ``N × N`` score matrix ``S = QKᵀ`` and
the probabilities ``P = softmax(S)`` in HBM: at least four passes over ``N²`` elements
(write S, read S, write P, read P for ``PV``). FlashAttention streams K and V through
on-chip SRAM in tiles and keeps a running max and sum per query row (the online softmax
of phase 04), so ``S`` and ``P`` exist only one tile at a time, on chip. What it reads
from HBM is Q and K/V (K/V once per tile of query rows) and what it writes is O.

The counts here are the textbook model (every read and write goes to HBM, nothing is
served from L2); they are what the FlashAttention paper's IO argument counts too.

Run: ``python tools/plots/attention_io.py`` → ``phase-04-attention-backends/figures/attention_io.png``.
"""
from __future__ import annotations

import math

import _common  # noqa: F401
from _common import ROOT, pyplot, save

OUT = ROOT / "phase-04-attention-backends" / "figures" / "attention_io.png"

# H100 SXM memory tiers (NVIDIA's Hopper tuning guide and datasheet).
H100 = {
    "sms": 132,
    "smem_per_sm_bytes": 228 * 1024,     # shared memory a block can use, per SM
    "registers_per_sm_bytes": 256 * 1024,
    "l2_bytes": 50 * 1024**2,
    "hbm_bytes": 80 * 10**9,
    "hbm_bandwidth": 3.35e12,
}


def naive_hbm_bytes(n: int, d: int, dtype_bytes: int = 2, score_passes: int = 4) -> int:
    """HBM traffic of unfused attention for one head: Q, K, V in, O out, plus S and P."""
    return dtype_bytes * (4 * n * d + score_passes * n * n)


def flash_hbm_bytes(n: int, d: int, dtype_bytes: int = 2, block_rows: int = 128) -> int:
    """HBM traffic of tiled attention: Q in and O out once, K and V once per query tile."""
    query_tiles = math.ceil(n / block_rows)
    return dtype_bytes * (2 * n * d + 2 * n * d * query_tiles)


def compulsory_hbm_bytes(n: int, d: int, dtype_bytes: int = 2) -> int:
    """The floor for any exact method: read Q, K, V once and write O once."""
    return dtype_bytes * 4 * n * d


def score_matrix_bytes(n: int, dtype_bytes: int = 2) -> int:
    return n * n * dtype_bytes


def tile_working_set_bytes(block_rows: int, block_cols: int, d: int, dtype_bytes: int = 2) -> int:
    """One query tile, one K tile and one V tile in fp16, the S tile in fp32."""
    return dtype_bytes * (block_rows * d + 2 * block_cols * d) + 4 * block_rows * block_cols


def data(n_values=(512, 1024, 2048, 4096, 8192, 16384, 32768), d: int = 128, heads: int = 32) -> dict:
    rows = []
    for n in n_values:
        naive = naive_hbm_bytes(n, d)
        flash = flash_hbm_bytes(n, d)
        floor = compulsory_hbm_bytes(n, d)
        rows.append({"n": n, "naive_bytes": naive, "flash_bytes": flash, "ratio": naive / flash,
                     "floor_bytes": floor, "ratio_to_floor": naive / floor,
                     "score_bytes_per_head": score_matrix_bytes(n),
                     "score_bytes_per_layer": heads * score_matrix_bytes(n),
                     "row_state_bytes_per_head": 2 * 4 * n})
    tile = tile_working_set_bytes(128, 128, d)
    return {"d": d, "heads": heads, "rows": rows,
            "tile_bytes": tile, "tile_fits_smem": tile <= H100["smem_per_sm_bytes"],
            "smem_total_bytes": H100["sms"] * H100["smem_per_sm_bytes"],
            "hbm_to_smem_capacity": H100["hbm_bytes"] / (H100["sms"] * H100["smem_per_sm_bytes"])}


def draw(d: dict, path=OUT):
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    ns = [r["n"] for r in d["rows"]]
    ax1.plot(ns, [r["naive_bytes"] / 2**20 for r in d["rows"]], "o-", label="standard (S, P in HBM)")
    ax1.plot(ns, [r["flash_bytes"] / 2**20 for r in d["rows"]], "s-", label="tiled, 128-row tiles")
    ax1.plot(ns, [r["floor_bytes"] / 2**20 for r in d["rows"]], "^--", label="floor: Q, K, V, O once")
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("sequence length N")
    ax1.set_ylabel("HBM traffic per head (MiB)")
    ax1.set_title("bytes moved, one head, d = 128")
    ax1.legend()
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(ns, [r["score_bytes_per_layer"] / 2**30 for r in d["rows"]], "o-", label="N×N scores, 32 heads")
    ax2.plot(ns, [d["heads"] * r["row_state_bytes_per_head"] / 2**30 for r in d["rows"]], "s-",
             label="running max + sum, 32 heads")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("sequence length N")
    ax2.set_ylabel("extra memory per layer (GiB)")
    ax2.set_title("what each method must hold")
    ax2.legend()
    ax2.grid(True, which="both", alpha=0.3)
    return save(fig, path)


def main() -> None:
    d = data()
    for r in d["rows"]:
        print(f"N={r['n']:6d}  standard {r['naive_bytes'] / 2**20:9.1f} MiB  tiled {r['flash_bytes'] / 2**20:8.1f} MiB"
              f"  floor {r['floor_bytes'] / 2**20:6.1f} MiB  ratio {r['ratio']:.2f}  standard/floor {r['ratio_to_floor']:.0f}  scores/head {r['score_bytes_per_head'] / 2**20:7.1f} MiB"
              f"  scores/layer {r['score_bytes_per_layer'] / 2**30:6.2f} GiB  row state/head {r['row_state_bytes_per_head'] / 2**10:.0f} KiB")
    print(f"tile working set (128x128 tiles, d=128): {d['tile_bytes'] / 1024:.0f} KiB, fits 228 KiB SMEM: {d['tile_fits_smem']}")
    print(f"H100 shared memory, all SMs: {d['smem_total_bytes'] / 2**20:.1f} MiB; HBM is {d['hbm_to_smem_capacity']:.0f}x larger")
    draw(d)


if __name__ == "__main__":
    main()
