"""CUDA graphs on a CPU: count kernel launches instead of timing them.

A CUDA graph is a recording of GPU work. Capture it once; afterwards one ``replay()``
call makes the GPU run every recorded kernel, so the CPU pays one launch instead of one
per kernel. Two rules come with the recording, and this module reproduces both:

1. **Fixed shapes.** A recording is only valid for the shapes it saw, so a wrapper
   keeps one graph per shape: ``GraphRunner.graphs`` is the mini version of
   ``vllm/compilation/cuda_graph.py:207@0decac0 (CUDAGraphWrapper.concrete_cudagraph_entries)``.
2. **Fixed addresses.** The recording reads the *buffer* it was captured with. New
   inputs must be copied into that buffer (``np.copyto``); pointing a Python name at
   a fresh array changes nothing the recording can see, and replay recomputes the old
   batch. Upstream checks this in debug mode by comparing input ``data_ptr()`` lists,
   ``vllm/compilation/cuda_graph.py:351@0decac0 ("assert new_input_addresses == entry.input_addresses")``.

The cost model is :class:`LaunchCounter`: eager execution bumps it once per op, a
replay bumps it once. Nothing here is timed, so every count is exact.

``PiecewiseGraphRunner`` is PIECEWISE mode: split the op list at ops that cannot be
captured (attention, upstream), capture the runs between them, run the split ops
eagerly. ``default_capture_sizes`` and ``select_capture_size`` are the batch-size
ladder and its round-up lookup, built the way upstream builds them.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LaunchCounter",
    "run_eager",
    "CUDAGraph",
    "GraphEntry",
    "GraphRunner",
    "PiecewiseGraphRunner",
    "split_into_segments",
    "max_cudagraph_capture_size",
    "default_capture_sizes",
    "select_capture_size",
]

Op = Callable[[np.ndarray], np.ndarray]


class LaunchCounter:
    """Process-wide tally of kernel launches, the stand-in for CPU launch overhead.

    Class-level on purpose: one Python thread issues every launch of a step, so the
    overhead is a shared resource, not a per-request one.
    """

    n: int = 0

    @classmethod
    def reset(cls) -> None:
        cls.n = 0

    @classmethod
    def bump(cls, k: int = 1) -> None:
        cls.n += k


def run_eager(ops: Sequence[Op], x: np.ndarray) -> np.ndarray:
    """Apply ``ops`` in order, paying one launch per op: the eager baseline."""
    for op in ops:
        LaunchCounter.bump(1)
        x = op(x)
    return x


class CUDAGraph:
    """A simulated ``torch.cuda.CUDAGraph``: a recording bound to its buffers.

    ``capture`` runs the ops once, eagerly (one launch each), and remembers *the
    array object* it was given as input and the array it produced as output.
    ``replay`` recomputes from the remembered input into the remembered output and
    pays a single launch. Because the binding is to objects, rebinding a name after
    capture does not reach the recording, which is the property the real one has.

    Real stream capture records kernels without running them; vLLM runs the model
    eagerly first (``cudagraph_num_of_warmups`` is set to 1 at
    ``vllm/config/vllm.py:1240@0decac0 ("cudagraph_num_of_warmups = 1")``), so the
    one eager pass charged here stands for that warm-up plus the capture.
    """

    def __init__(self) -> None:
        self._ops: list[Op] = []
        self._static_input: np.ndarray | None = None
        self._static_output: np.ndarray | None = None

    def capture(self, ops: Sequence[Op], static_input: np.ndarray) -> np.ndarray:
        self._ops = list(ops)
        self._static_input = static_input
        self._static_output = np.array(run_eager(self._ops, static_input))
        return self._static_output

    def replay(self) -> np.ndarray:
        if self._static_input is None or self._static_output is None:
            raise RuntimeError("replay() before capture()")
        LaunchCounter.bump(1)
        out = self._static_input
        for op in self._ops:
            out = op(out)
        np.copyto(self._static_output, out)
        return self._static_output


@dataclass
class GraphEntry:
    """One captured shape, as ``vllm/compilation/cuda_graph.py:128@0decac0 (CUDAGraphEntry)``.

    ``input_address`` plays upstream's ``input_addresses``: recorded at capture,
    compared at replay when the runner is in debug mode.
    """

    shape: tuple[int, ...]
    static_input: np.ndarray
    cudagraph: CUDAGraph
    output: np.ndarray
    num_ops: int
    input_address: int


class GraphRunner:
    """Capture on the first call with a shape, replay on every later one.

    The mini ``vllm/compilation/cuda_graph.py:145@0decac0 (CUDAGraphWrapper)``.
    Upstream keys entries on a ``BatchDescriptor`` chosen by the dispatcher and leaves
    the input copy to the model runner (the wrapper's docstring says so); here the
    key is the (padded) input shape and the runner does the copy itself.

    ``capture_sizes``: if given, the batch dimension (axis 0) is padded with zero
    rows up to the smallest size in the list that fits, so batches 5, 6, 7 share the
    graph captured at 8; batches above the largest size run eagerly, as upstream's
    dispatcher returns ``NONE`` for them
    (``vllm/v1/cudagraph_dispatcher.py:282@0decac0 ("or num_tokens > max_size")``).
    Padding assumes rows are independent, which holds for everything but attention
    in a real model, and attention masks padded rows out.

    ``debug``: check at every replay that the entry's input buffer is still the one
    captured, like upstream under ``VLLM_LOGGING_LEVEL=DEBUG``.
    """

    def __init__(self, ops: Sequence[Op], capture_sizes: Sequence[int] | None = None,
                 debug: bool = False) -> None:
        self.ops = list(ops)
        self.capture_sizes = sorted(set(capture_sizes)) if capture_sizes else None
        self.debug = debug
        self.graphs: dict[tuple[int, ...], GraphEntry] = {}
        self.num_eager_calls = 0

    @property
    def num_captured(self) -> int:
        return len(self.graphs)

    def padded_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The shape a batch runs at: ``shape`` itself, its rung, or None (eager)."""
        if self.capture_sizes is None:
            return shape
        rung = select_capture_size(self.capture_sizes, shape[0])
        return None if rung is None else (rung, *shape[1:])

    def load_inputs(self, entry: GraphEntry, x: np.ndarray) -> None:
        """Constraint 2: write the new batch *into* the captured buffer.

        Rows past ``len(x)`` are padding: zeroed so a replay never reads a previous
        batch's leftovers as data.
        """
        n = x.shape[0]
        np.copyto(entry.static_input[:n], x)
        entry.static_input[n:] = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        key = self.padded_shape(x.shape)
        if key is None:
            self.num_eager_calls += 1
            return run_eager(self.ops, x)
        n = x.shape[0]
        entry = self.graphs.get(key)
        if entry is None:
            static_input = np.zeros(key, dtype=x.dtype)
            static_input[:n] = x
            graph = CUDAGraph()
            output = graph.capture(self.ops, static_input)
            self.graphs[key] = GraphEntry(key, static_input, graph, output, len(self.ops), id(static_input))
            return output[:n]
        self.load_inputs(entry, x)
        if self.debug and id(entry.static_input) != entry.input_address:
            raise AssertionError(
                f"input buffer for shape {key} changed since capture: the replay would "
                "read the captured buffer, not the new one (copy into it, don't rebind)"
            )
        return entry.cudagraph.replay()[:n]


def split_into_segments(ops: Sequence[Op], is_capturable: Callable[[int], bool]) -> list[tuple[bool, list[Op]]]:
    """Group consecutive ops with the same ``is_capturable(i)`` into segments.

    Consecutive uncapturable ops stay together in one eager segment, as upstream's
    splitter keeps consecutive splitting ops in one subgraph
    (``vllm/compilation/backends.py:578@0decac0 ("keep consecutive splitting ops together")``).
    """
    segments: list[tuple[bool, list[Op]]] = []
    for i, op in enumerate(ops):
        cap = bool(is_capturable(i))
        if segments and segments[-1][0] == cap:
            segments[-1][1].append(op)
        else:
            segments.append((cap, [op]))
    return segments


class PiecewiseGraphRunner:
    """PIECEWISE mode: one graph per capturable run of ops, split ops run eagerly.

    Upstream splits the traced FX graph at ``splitting_ops`` (attention by default)
    in ``vllm/compilation/backends.py:548@0decac0 (split_graph)`` and wraps every
    non-splitting piece in its own ``CUDAGraphWrapper`` with runtime mode PIECEWISE
    (``vllm/compilation/backends.py:628@0decac0 (wrap_with_cudagraph_if_needed)``).
    A replay then costs one launch per piece plus one per eager op.
    """

    def __init__(self, ops: Sequence[Op], is_capturable: Callable[[int], bool]) -> None:
        self.segments: list[tuple[bool, GraphRunner | list[Op]]] = [
            (cap, GraphRunner(seg) if cap else seg) for cap, seg in split_into_segments(ops, is_capturable)
        ]

    @property
    def num_graphs(self) -> int:
        return sum(1 for cap, _ in self.segments if cap)

    @property
    def num_captured(self) -> int:
        return sum(r.num_captured for cap, r in self.segments if cap)

    @property
    def launches_per_replay(self) -> int:
        """Launches of one call once every piece is captured: pieces + eager ops."""
        return sum(1 if cap else len(seg) for cap, seg in self.segments)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for cap, seg in self.segments:
            x = seg(x) if cap else run_eager(seg, x)
        return x


def max_cudagraph_capture_size(max_num_seqs: int, max_num_batched_tokens: int,
                               num_speculative_tokens: int = 0) -> int:
    """The ladder's top when the user sets none: ``min(2 * max_num_seqs * q, 512)``.

    ``q`` is the decode query length (1, plus the speculative tokens); the result is
    also capped by the token budget. ``vllm/config/vllm.py:1657@0decac0 ("max_cudagraph_capture_size = min(")``.
    """
    q = 1 + num_speculative_tokens
    return min(max_num_batched_tokens, min(max_num_seqs * q * 2, 512))


def default_capture_sizes(max_capture_size: int, max_num_batched_tokens: int | None = None) -> list[int]:
    """The default capture-size ladder: 1, 2, 4, every 8 below 256, every 16 from 256.

    Built as ``VllmConfig._set_cudagraph_sizes`` builds it
    (``vllm/config/vllm.py:1688-1708@0decac0 ("cudagraph_capture_sizes = [")``): the
    token budget is added as a rung when it is at most the top, so the largest
    possible batch never falls off the ladder.
    """
    sizes = [i for i in (1, 2, 4) if i <= max_capture_size]
    if max_capture_size >= 8:
        sizes += list(range(8, min(max_capture_size + 1, 256), 8))
    if max_capture_size >= 256:
        sizes += list(range(256, max_capture_size + 1, 16))
    if max_num_batched_tokens is not None and max_num_batched_tokens <= max_capture_size:
        sizes.append(max_num_batched_tokens)
    return sorted(set(sizes))


def select_capture_size(capture_sizes: Sequence[int], num_tokens: int) -> int | None:
    """The smallest rung >= ``num_tokens``; None above the top rung (run eagerly).

    Upstream precomputes this lookup as a table,
    ``vllm/v1/cudagraph_dispatcher.py:76@0decac0 (CudagraphDispatcher._compute_bs_to_padded_graph_size)``.
    """
    sizes = sorted(capture_sizes)
    i = bisect.bisect_left(sizes, num_tokens)
    return sizes[i] if i < len(sizes) else None
