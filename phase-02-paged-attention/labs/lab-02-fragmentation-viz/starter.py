"""Lab 02-02 (your work): contiguous reservation vs paged allocation, measured and drawn.

Both allocators manage the same ``total_slots`` KV slots (one slot = one token's K and V
in every layer) and record, per slot, one of three states:

    FREE      nobody holds it
    RESERVED  held by a request but holding no token (waste)
    USED      holds a token's K/V

Contiguous (the pre-vLLM way): a request reserves ``max_len`` adjacent slots, first fit,
because its final length is unknown when it is admitted. Paged (vLLM): a request takes
``ceil(tokens / block_size)`` blocks of ``block_size`` slots, any blocks at all.

Once the tests pass, ``python starter.py`` prints the report and writes ``fragmentation.png``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FREE, RESERVED, USED = 0, 1, 2


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


class ContiguousAllocator:
    """First-fit allocator of adjacent slot runs, as engines did before paging."""

    def __init__(self, total_slots: int, max_len: int) -> None:
        self.max_len = max_len
        self.state = np.full(total_slots, FREE, dtype=np.int8)
        self.owner = np.full(total_slots, -1, dtype=np.int64)

    def free_runs(self) -> list[tuple[int, int]]:
        """(start, length) of every maximal run of FREE slots, left to right."""
        raise NotImplementedError("TODO 1: list the maximal runs of free slots (README task 1)")

    def largest_free_run(self) -> int:
        return max((n for _, n in self.free_runs()), default=0)

    def allocate(self, req_id: int, num_tokens: int, reserve: int | None = None) -> int | None:
        """Reserve ``reserve`` (default ``max_len``) adjacent slots at the first free run
        that fits and mark the first ``num_tokens`` USED. Returns the start slot, or None
        (nothing changes)."""
        raise NotImplementedError("TODO 2: reserve a run first-fit and mark the tokens used (README task 2)")

    def free(self, req_id: int) -> None:
        """Give back every slot the request holds."""
        raise NotImplementedError("TODO 3: release every slot a request holds (README task 3)")


class PagedAllocator:
    """Blocks of ``block_size`` slots, any block for any request (lowest free ids first)."""

    def __init__(self, total_slots: int, block_size: int) -> None:
        if total_slots % block_size:
            raise ValueError("total_slots must be a multiple of block_size")
        self.block_size = block_size
        self.state = np.full(total_slots, FREE, dtype=np.int8)
        self.block_owner = np.full(total_slots // block_size, -1, dtype=np.int64)

    def allocate(self, req_id: int, num_tokens: int) -> list[int] | None:
        """Take ``ceil(num_tokens / block_size)`` free blocks; the request's tokens fill
        them in order, so only the last block can be partly RESERVED. Returns the block
        ids (the request's block table), or None (nothing changes)."""
        raise NotImplementedError("TODO 4: give a request the blocks its tokens need (README task 4)")

    def free(self, req_id: int) -> None:
        """Give back every block the request holds."""
        raise NotImplementedError("TODO 5: release a request's blocks (README task 5)")


@dataclass
class AdmissionResult:
    admitted: int
    rejected: int
    used_slots: int
    wasted_slots: int  # held by a request, holding no token

    @property
    def waste_fraction(self) -> float:
        """Share of the slots held by requests that hold nothing."""
        raise NotImplementedError("TODO 6: the share of held slots that hold no token (README task 6)")


def summarize(allocator, admitted: int, rejected: int) -> AdmissionResult:
    return AdmissionResult(
        admitted=admitted,
        rejected=rejected,
        used_slots=int(np.sum(allocator.state == USED)),
        wasted_slots=int(np.sum(allocator.state == RESERVED)),
    )


def admit_all(allocator, lengths: list[int]) -> AdmissionResult:
    """Offer each request (``lengths[i]`` tokens) once, in order; count what fits."""
    raise NotImplementedError("TODO 6: offer every request once and count the outcome (README task 6)")


def compare(total_slots: int = 4096, max_len: int = 512, used_len: int = 32, block_size: int = 16,
            num_requests: int = 64):
    """The README workload: 64 requests, each reserving 512 slots and using 32."""
    contiguous = ContiguousAllocator(total_slots, max_len)
    paged = PagedAllocator(total_slots, block_size)
    lengths = [used_len] * num_requests
    return contiguous, admit_all(contiguous, lengths), paged, admit_all(paged, lengths)


def external_fragmentation_demo(total_slots: int = 4096, max_len: int = 512, block_size: int = 16):
    """Fill the pool with 512-slot reservations, finish every other request, then offer
    a request that needs 2 reservation-sized runs (1024 tokens). Half the pool is free,
    yet no *run* is longer than 512; pages do not care about runs.

    Returns (free_slots, largest_free_run, contiguous_start_or_None, paged_table_or_None).
    """
    contiguous = ContiguousAllocator(total_slots, max_len)
    paged = PagedAllocator(total_slots, block_size)
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


def render_ascii(state: np.ndarray, width: int = 64) -> str:
    """One character per ``len(state) // width`` slots: '#' if any slot there is USED,
    else '.' if any is RESERVED, else ' ' (free). Wrapped in '|' so blanks show."""
    raise NotImplementedError("TODO 7: draw the slot states as one line of characters (README task 7)")


def report(total_slots: int = 4096, max_len: int = 512, used_len: int = 32, block_size: int = 16,
           num_requests: int = 64) -> str:
    contiguous, c, paged, p = compare(total_slots, max_len, used_len, block_size, num_requests)
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


def render_png(path: str | Path, total_slots: int = 4096, max_len: int = 512, used_len: int = 32,
               block_size: int = 16, num_requests: int = 64) -> Path:
    """Both pools as 64x64 slot maps side by side. Needs matplotlib (imported here only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    contiguous, c, paged, p = compare(total_slots, max_len, used_len, block_size, num_requests)
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


if __name__ == "__main__":
    print(report())
    try:
        out = render_png(Path(__file__).with_name("fragmentation.png"))
        print(f"wrote {out.name}")
    except ImportError:
        print("matplotlib not installed: ASCII only")
