"""Lab 05-03 reference: CUDAGraphMode, the config-time checks, and the per-step dispatch.

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
        return isinstance(self.value, tuple)

    def decode_mode(self) -> CUDAGraphMode:
        return CUDAGraphMode(self.value[0]) if self.separate_routine() else self

    def mixed_mode(self) -> CUDAGraphMode:
        return CUDAGraphMode(self.value[1]) if self.separate_routine() else self

    def has_mode(self, mode: CUDAGraphMode) -> bool:
        assert not mode.separate_routine(), "ask about a runtime mode, not a composite"
        if self.separate_routine():
            return mode.value in self.value
        return self == mode

    def requires_piecewise_compilation(self) -> bool:
        return self.has_mode(CUDAGraphMode.PIECEWISE)

    def max_cudagraph_mode(self) -> CUDAGraphMode:
        return CUDAGraphMode(max(self.value)) if self.separate_routine() else self

    def has_full_cudagraphs(self) -> bool:
        return self.max_cudagraph_mode() == CUDAGraphMode.FULL

    def __str__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return self != CUDAGraphMode.NONE


def resolve_cudagraph_mode(cudagraph_mode: CUDAGraphMode, compilation_mode: CompilationMode,
                           splitting_ops: list[str] | None = None, enforce_eager: bool = False) -> CUDAGraphMode:
    """The mode the engine actually runs, after the config-time downgrades, in upstream order.

    ``splitting_ops=None`` means "use the default attention ops"; ``[]`` means "split nowhere".
    """
    if enforce_eager:
        return CUDAGraphMode.NONE
    if cudagraph_mode.requires_piecewise_compilation() and compilation_mode != CompilationMode.VLLM_COMPILE:
        return CUDAGraphMode.NONE
    if compilation_mode == CompilationMode.VLLM_COMPILE and splitting_ops is not None and len(splitting_ops) == 0:
        if cudagraph_mode == CUDAGraphMode.PIECEWISE:
            return CUDAGraphMode.NONE
        if cudagraph_mode == CUDAGraphMode.FULL_AND_PIECEWISE:
            return CUDAGraphMode.FULL
    return cudagraph_mode


def is_uniform_decode(max_num_scheduled_tokens: int, num_tokens: int, num_reqs: int) -> bool:
    """Every request schedules exactly one token: a pure decode step."""
    return max_num_scheduled_tokens == 1 and num_tokens == max_num_scheduled_tokens * num_reqs


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
        self.cudagraph_mode = cudagraph_mode
        self.keys_initialized = True
        if cudagraph_mode == CUDAGraphMode.NONE:
            return
        mixed = cudagraph_mode.mixed_mode()
        if mixed != CUDAGraphMode.NONE:
            for bs in self.capture_sizes:
                desc = self._create_padded_batch_descriptor(bs, False)
                if mixed == CUDAGraphMode.PIECEWISE:
                    desc = replace(desc, num_reqs=None, uniform=False)
                self.cudagraph_keys[mixed].add(desc)
        if cudagraph_mode.decode_mode() == CUDAGraphMode.FULL and cudagraph_mode.separate_routine():
            for bs in self.capture_sizes:
                if bs <= self.max_num_seqs:
                    self.cudagraph_keys[CUDAGraphMode.FULL].add(self._create_padded_batch_descriptor(bs, True))

    def dispatch(self, num_tokens: int, uniform_decode: bool = False) -> tuple[CUDAGraphMode, BatchDescriptor]:
        if (not self.keys_initialized or self.cudagraph_mode == CUDAGraphMode.NONE
                or num_tokens > self.capture_sizes[-1]):
            return CUDAGraphMode.NONE, BatchDescriptor(num_tokens)
        uniform = uniform_decode and self.cudagraph_mode.separate_routine()
        desc = self._create_padded_batch_descriptor(num_tokens, uniform)
        if desc in self.cudagraph_keys[CUDAGraphMode.FULL]:
            return CUDAGraphMode.FULL, desc
        relaxed = replace(desc, num_reqs=None, uniform=False)
        if relaxed in self.cudagraph_keys[CUDAGraphMode.PIECEWISE]:
            return CUDAGraphMode.PIECEWISE, relaxed
        return CUDAGraphMode.NONE, BatchDescriptor(num_tokens)

    def get_capture_descs(self) -> list[tuple[CUDAGraphMode, list[BatchDescriptor]]]:
        """What start-up captures: PIECEWISE keys first, then FULL, each largest first."""
        result = []
        for mode in (CUDAGraphMode.PIECEWISE, CUDAGraphMode.FULL):
            descs = sorted(self.cudagraph_keys[mode], key=lambda d: d.num_tokens, reverse=True)
            if descs:
                result.append((mode, descs))
        return result

