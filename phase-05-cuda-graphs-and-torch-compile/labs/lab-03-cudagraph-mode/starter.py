"""Lab 05-03 (your work): CUDAGraphMode, the config-time checks, and the per-step dispatch.

Three layers, in the order the engine meets them:

1. ``CUDAGraphMode`` — the enum and its helper methods, as in
   ``vllm/config/compilation.py:53@0decac0 (CUDAGraphMode)``. Composite modes are
   ``(decode_mode, mixed_mode)`` tuples.
2. ``resolve_cudagraph_mode`` — what ``VllmConfig`` and ``CompilationConfig`` do to the
   requested mode before any model runs (enforce_eager, compilation mode, splitting ops).
3. ``CudagraphDispatcher`` — at start-up, the set of graphs to capture; at every step,
   which graph (if any) to replay, as ``vllm/v1/cudagraph_dispatcher.py:15@0decac0 (CudagraphDispatcher)``
   without LoRA and speculative decoding (decode query length 1).
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
        raise NotImplementedError("TODO 1: composite or simple (README task 1)")

    def decode_mode(self) -> CUDAGraphMode:
        raise NotImplementedError("TODO 1: the decode routine (README task 1)")

    def mixed_mode(self) -> CUDAGraphMode:
        raise NotImplementedError("TODO 1: the mixed routine (README task 1)")

    def has_mode(self, mode: CUDAGraphMode) -> bool:
        raise NotImplementedError("TODO 2: does this mode use a runtime mode (README task 2)")

    def requires_piecewise_compilation(self) -> bool:
        raise NotImplementedError("TODO 2: does compile have to split (README task 2)")

    def max_cudagraph_mode(self) -> CUDAGraphMode:
        raise NotImplementedError("TODO 2: the strongest routine (README task 2)")

    def has_full_cudagraphs(self) -> bool:
        raise NotImplementedError("TODO 2: any full graphs (README task 2)")

    def __str__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return self != CUDAGraphMode.NONE


def resolve_cudagraph_mode(cudagraph_mode: CUDAGraphMode, compilation_mode: CompilationMode,
                           splitting_ops: list[str] | None = None, enforce_eager: bool = False) -> CUDAGraphMode:
    """The mode the engine actually runs, after the config-time downgrades. README task 3."""
    raise NotImplementedError("TODO 3: apply the config-time downgrades (README task 3)")


def is_uniform_decode(max_num_scheduled_tokens: int, num_tokens: int, num_reqs: int) -> bool:
    """Whether this step is a pure decode step. README task 4."""
    raise NotImplementedError("TODO 4: recognise a uniform decode step (README task 4)")


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
        """Record the mode and build the keys of every graph start-up captures. README task 5."""
        raise NotImplementedError("TODO 5: build the graph keys (README task 5)")

    def dispatch(self, num_tokens: int, uniform_decode: bool = False) -> tuple[CUDAGraphMode, BatchDescriptor]:
        """(runtime mode, batch descriptor) for one step. README task 6."""
        raise NotImplementedError("TODO 6: pick the graph for a step (README task 6)")

    def get_capture_descs(self) -> list[tuple[CUDAGraphMode, list[BatchDescriptor]]]:
        """What start-up captures: PIECEWISE keys first, then FULL, each largest first."""
        result = []
        for mode in (CUDAGraphMode.PIECEWISE, CUDAGraphMode.FULL):
            descs = sorted(self.cudagraph_keys[mode], key=lambda d: d.num_tokens, reverse=True)
            if descs:
                result.append((mode, descs))
        return result

