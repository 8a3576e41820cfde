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

from course.lab_support import phase_02 as _support

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


def render_ascii(state: np.ndarray, width: int = 64) -> str:
    """One character per ``len(state) // width`` slots: '#' if any slot there is USED,
    else '.' if any is RESERVED, else ' ' (free). Wrapped in '|' so blanks show."""
    raise NotImplementedError("TODO 7: draw the slot states as one line of characters (README task 7)")


def compare(total_slots: int = 4096, max_len: int = 512, used_len: int = 32, block_size: int = 16,
            num_requests: int = 64):
    """The README workload: 64 requests, each reserving 512 slots and using 32 (given)."""
    return _support.compare(ContiguousAllocator, PagedAllocator, admit_all, total_slots, max_len, used_len,
                            block_size, num_requests)


def external_fragmentation_demo(total_slots: int = 4096, max_len: int = 512, block_size: int = 16):
    """Half the pool free, no run long enough for a 1024-token request; pages do not care
    about runs (given). Returns (free_slots, largest_free_run, contiguous_start_or_None,
    paged_table_or_None)."""
    return _support.external_fragmentation_demo(ContiguousAllocator, PagedAllocator, total_slots, max_len,
                                                block_size)


def report(total_slots: int = 4096, max_len: int = 512, used_len: int = 32, block_size: int = 16,
           num_requests: int = 64) -> str:
    """Both admissions and both slot maps as text (given)."""
    return _support.report(ContiguousAllocator, PagedAllocator, admit_all, render_ascii, total_slots, max_len,
                           used_len, block_size, num_requests)


def render_png(path: str | Path, total_slots: int = 4096, max_len: int = 512, used_len: int = 32,
               block_size: int = 16, num_requests: int = 64) -> Path:
    """Both pools as 64x64 slot maps side by side; needs matplotlib (given)."""
    return _support.render_png(ContiguousAllocator, PagedAllocator, admit_all, path, total_slots, max_len,
                               used_len, block_size, num_requests)


if __name__ == "__main__":
    print(report())
    try:
        out = render_png(Path(__file__).with_name("fragmentation.png"))
        print(f"wrote {out.name}")
    except ImportError:
        print("matplotlib not installed: ASCII only")
