"""Lab 05-03: CUDAGraphMode, the config-time checks, and the per-step dispatch.

Fill in the TODOs in order (README.md, "Tasks"); diff your enum against
``vllm/config/compilation.py:53@0decac0 (CUDAGraphMode)`` when you are done. Grade
yourself from the phase folder: ``LAB_IMPL=starter pytest -q labs/lab-03-cudagraph-mode``.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mini_vllm.cudagraph import select_capture_size


class CompilationMode(enum.IntEnum):
    """How hard torch.compile works; only ``VLLM_COMPILE`` splits the graph for PIECEWISE."""

    NONE = 0
    STOCK_TORCH_COMPILE = 1
    DYNAMO_TRACE_ONCE = 2
    VLLM_COMPILE = 3


class CUDAGraphMode(enum.Enum):
    """NONE / PIECEWISE / FULL are runtime modes; the two tuples are (decode, mixed) policies."""

    NONE = 0
    PIECEWISE = 1
    FULL = 2
    FULL_DECODE_ONLY = (FULL, NONE)
    FULL_AND_PIECEWISE = (FULL, PIECEWISE)

    def separate_routine(self) -> bool:
        raise NotImplementedError("TODO 1: a composite mode's value is a tuple — see README step 1")

    def decode_mode(self) -> CUDAGraphMode:
        raise NotImplementedError("TODO 1: composites: CUDAGraphMode(self.value[0]); simple modes: self — see README step 1")

    def mixed_mode(self) -> CUDAGraphMode:
        raise NotImplementedError("TODO 1: composites: CUDAGraphMode(self.value[1]); simple modes: self — see README step 1")

    def has_mode(self, mode: CUDAGraphMode) -> bool:
        raise NotImplementedError("TODO 2: is `mode` one of this mode's routines? (mode itself must not be a composite) — see README step 2")

    def requires_piecewise_compilation(self) -> bool:
        raise NotImplementedError("TODO 2: does any routine use PIECEWISE? — see README step 2")

    def max_cudagraph_mode(self) -> CUDAGraphMode:
        raise NotImplementedError("TODO 2: the larger of the two routines, or self — see README step 2")

    def has_full_cudagraphs(self) -> bool:
        raise NotImplementedError("TODO 2: is the largest routine FULL? — see README step 2")

    def __str__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return self != CUDAGraphMode.NONE


def resolve_cudagraph_mode(cudagraph_mode: CUDAGraphMode, compilation_mode: CompilationMode,
                           splitting_ops: list[str] | None = None, enforce_eager: bool = False) -> CUDAGraphMode:
    """The mode the engine actually runs, after the config-time downgrades, in upstream order.

    ``splitting_ops=None`` means "use the default attention ops"; ``[]`` means "split nowhere".
    """
    raise NotImplementedError("TODO 3: enforce_eager, then compilation mode, then empty splitting_ops — see README step 3")


def is_uniform_decode(max_num_scheduled_tokens: int, num_tokens: int, num_reqs: int) -> bool:
    """Every request schedules exactly one token: a pure decode step."""
    raise NotImplementedError("TODO 4: one token per request, every request — see README step 4")


@dataclass(frozen=True)
class BatchDescriptor:
    """The key of a captured graph. ``num_reqs=None``: any request count (PIECEWISE)."""

    num_tokens: int
    num_reqs: int | None = None
    uniform: bool = False


class CudagraphDispatcher:
    """Which graphs exist (keys) and which one a step uses (dispatch)."""

    def __init__(self, capture_sizes: Sequence[int], max_num_seqs: int) -> None:
        self.capture_sizes = sorted(capture_sizes)
        self.max_num_seqs = max_num_seqs
        self.cudagraph_mode = CUDAGraphMode.NONE
        self.cudagraph_keys: dict[CUDAGraphMode, set[BatchDescriptor]] = {
            CUDAGraphMode.PIECEWISE: set(),
            CUDAGraphMode.FULL: set(),
        }
        self.keys_initialized = False

    def _create_padded_batch_descriptor(self, num_tokens: int, uniform_decode: bool) -> BatchDescriptor:
        padded = select_capture_size(self.capture_sizes, num_tokens)
        assert padded is not None
        uniform = uniform_decode and self.cudagraph_mode.has_mode(CUDAGraphMode.FULL)
        return BatchDescriptor(padded, min(padded, self.max_num_seqs), uniform)

    def initialize_cudagraph_keys(self, cudagraph_mode: CUDAGraphMode) -> None:
        raise NotImplementedError("TODO 5: mixed_mode keys for every size (PIECEWISE: num_reqs=None), then FULL decode keys up to max_num_seqs — see README step 5")

    def dispatch(self, num_tokens: int, uniform_decode: bool = False) -> tuple[CUDAGraphMode, BatchDescriptor]:
        raise NotImplementedError("TODO 6: NONE above the ladder; else try the FULL key, then the relaxed PIECEWISE key, else NONE — see README step 6")

    def get_capture_descs(self) -> list[tuple[CUDAGraphMode, list[BatchDescriptor]]]:
        """What start-up captures: PIECEWISE keys first, then FULL, each largest first."""
        result = []
        for mode in (CUDAGraphMode.PIECEWISE, CUDAGraphMode.FULL):
            descs = sorted(self.cudagraph_keys[mode], key=lambda d: d.num_tokens, reverse=True)
            if descs:
                result.append((mode, descs))
        return result


def capture_progress_bars(dispatcher: CudagraphDispatcher) -> list[str]:
    """The start-up progress bars' titles and lengths, in the format the model runner logs."""
    bars = []
    for mode, descs in dispatcher.get_capture_descs():
        kind = "decode" if descs[0].uniform else "mixed prefill-decode"
        bars.append(f"Capturing CUDA graphs ({kind}, {mode.name}): {len(descs)}/{len(descs)}")
    return bars
