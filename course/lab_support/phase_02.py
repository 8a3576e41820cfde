"""Scaffolding phase 02's labs hand the learner, written once.

Lab-02's workload, report and figure: each function takes the lab's own allocator classes
and functions, so ``starter.py`` and ``solution.py`` run the same scaffolding on whichever
implementation they hold.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FREE = 0  # the state code lab-02 gives a free slot


def compare(contiguous_cls, paged_cls, admit_all, total_slots: int = 4096, max_len: int = 512,
            used_len: int = 32, block_size: int = 16, num_requests: int = 64):
    """Lab-02's README workload: ``num_requests`` requests, each reserving ``max_len``
    slots and using ``used_len``, offered to both allocators."""
    contiguous = contiguous_cls(total_slots, max_len)
    paged = paged_cls(total_slots, block_size)
    lengths = [used_len] * num_requests
    return contiguous, admit_all(contiguous, lengths), paged, admit_all(paged, lengths)


def external_fragmentation_demo(contiguous_cls, paged_cls, total_slots: int = 4096, max_len: int = 512,
                                block_size: int = 16):
    """Fill the pool with ``max_len``-slot reservations, finish every other request, then
    offer a request that needs 2 reservation-sized runs. Half the pool is free, yet no
    *run* is longer than ``max_len``; pages do not care about runs.

    Returns (free_slots, largest_free_run, contiguous_start_or_None, paged_table_or_None).
    """
    contiguous = contiguous_cls(total_slots, max_len)
    paged = paged_cls(total_slots, block_size)
    n = total_slots // max_len
    for req_id in range(n):
        contiguous.allocate(req_id, max_len)
        paged.allocate(req_id, max_len)
    for req_id in range(0, n, 2):
        contiguous.free(req_id)
        paged.free(req_id)
    free_slots = int(np.sum(contiguous.state == FREE))
    big = 2 * max_len
    return free_slots, contiguous.largest_free_run(), contiguous.allocate(n, big, reserve=big), paged.allocate(n, big)


def report(contiguous_cls, paged_cls, admit_all, render_ascii, total_slots: int = 4096, max_len: int = 512,
           used_len: int = 32, block_size: int = 16, num_requests: int = 64) -> str:
    """Lab-02's text report: both admissions and both slot maps."""
    contiguous, c, paged, p = compare(contiguous_cls, paged_cls, admit_all, total_slots, max_len, used_len,
                                      block_size, num_requests)
    cell = total_slots // 64
    lines = [
        f"pool {total_slots} slots, {num_requests} requests of {used_len} tokens, "
        f"max_len {max_len}, block_size {block_size}",
        f"contiguous: admitted={c.admitted} rejected={c.rejected} used={c.used_slots} "
        f"wasted={c.wasted_slots} ({c.waste_fraction:.2%} of held slots)",
        f"paged:      admitted={p.admitted} rejected={p.rejected} used={p.used_slots} "
        f"wasted={p.wasted_slots} ({p.waste_fraction:.2%} of held slots)",
        f"one character = {cell} slots   # token   . reserved, empty   (blank) free",
        "contiguous " + render_ascii(contiguous.state),
        "paged      " + render_ascii(paged.state),
    ]
    return "\n".join(lines)


def render_png(contiguous_cls, paged_cls, admit_all, path: str | Path, total_slots: int = 4096,
               max_len: int = 512, used_len: int = 32, block_size: int = 16, num_requests: int = 64) -> Path:
    """Both pools as square slot maps side by side. Needs matplotlib (imported here only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    contiguous, c, paged, p = compare(contiguous_cls, paged_cls, admit_all, total_slots, max_len, used_len,
                                      block_size, num_requests)
    side = int(np.sqrt(total_slots))
    cmap = ListedColormap(["#f2f2f2", "#f4a261", "#264653"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    for ax, alloc, res, name in ((axes[0], contiguous, c, "contiguous (reserve max_len)"),
                                 (axes[1], paged, p, f"paged (block_size={block_size})")):
        ax.imshow(alloc.state.reshape(side, side), cmap=cmap, vmin=0, vmax=2, interpolation="nearest")
        ax.set_title(f"{name}\nadmitted {res.admitted}/{num_requests}, "
                     f"{res.waste_fraction:.1%} of held slots empty", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.5, 0.03, "each pixel is one KV slot: dark = token, orange = reserved but empty, light = free",
             ha="center", fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
