"""Given code for phase 00's labs: the toy model of lab 00-01 and the printers the labs'
``__main__`` blocks call. It lives here once, so a lab's starter.py and solution.py do not
carry two copies that could drift apart.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# --- lab 00-01: a one-layer, one-head toy attention model ------------------------------

VOCAB_SIZE = 64
HEAD_DIM = 8
_rng = np.random.default_rng(0)
_W_K = _rng.standard_normal((VOCAB_SIZE, HEAD_DIM))
_W_V = _rng.standard_normal((VOCAB_SIZE, HEAD_DIM))
_W_Q = _rng.standard_normal((VOCAB_SIZE, HEAD_DIM))
_W_OUT = _rng.standard_normal((HEAD_DIM, VOCAB_SIZE))
_FREQS = 1.0 / (100.0 ** (np.arange(HEAD_DIM) / HEAD_DIM))


class KVWork:
    """Counts K/V computations: one unit per token pushed through ``compute_kv``."""

    def __init__(self) -> None:
        self.units = 0


def _position_code(positions) -> np.ndarray:
    """Position enters Q, K and V additively, so a token's K/V depend on where it sits."""
    return np.sin(np.asarray(positions, dtype=np.float64)[:, None] * _FREQS[None, :])


def compute_kv(token_ids, positions, work: KVWork) -> tuple[np.ndarray, np.ndarray]:
    """K and V rows ``[n, HEAD_DIM]`` for ``n`` tokens at the given positions.

    Elementwise only (no matmul), so a row is bit-identical whether it was computed
    alone or inside a batch: the cached and uncached runs can be compared exactly.
    """
    token_ids = np.asarray(token_ids, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    if token_ids.shape != positions.shape or token_ids.ndim != 1:
        raise ValueError("compute_kv takes two 1-D sequences of the same length")
    work.units += len(token_ids)
    code = _position_code(positions)
    return _W_K[token_ids] + 2.0 * code, _W_V[token_ids] + code


def next_token(token_ids, keys: np.ndarray, values: np.ndarray) -> int:
    """Greedy next token: the last token's query attends over all ``keys``/``values``.

    Causal by construction: the K/V rows passed in are exactly the tokens so far.
    """
    n = len(token_ids)
    if keys.shape != (n, HEAD_DIM) or values.shape != (n, HEAD_DIM):
        raise ValueError(
            f"next_token needs one K and one V row per token: {n} tokens, "
            f"got keys {keys.shape} and values {values.shape}"
        )
    q = _W_Q[token_ids[-1]] + 2.0 * _position_code([n - 1])[0]
    scores = keys @ q / np.sqrt(HEAD_DIM)
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return int(np.argmax((weights @ values) @ _W_OUT))


def print_work_table(generate_no_cache: Callable, generate_with_cache: Callable,
                     prompt=(3, 14, 15, 9, 26), lengths=(10, 100, 1000)) -> None:
    """Lab 00-01's table: work units without and with the cache, and their ratio."""
    print(f"{'n_new':>6} {'no cache':>9} {'cached':>7} {'ratio':>7}")
    for n in lengths:
        toks_a, w_a = generate_no_cache(list(prompt), n)
        toks_b, w_b = generate_with_cache(list(prompt), n)
        assert toks_a == toks_b, "the two generators disagree: the cache changed the output"
        print(f"{n:>6} {w_a:>9} {w_b:>7} {w_a / w_b:>7.1f}")


# --- lab 00-02: the KV budget of one model on one GPU ----------------------------------


def print_kv_budget(kv_bytes_per_token: Callable, kv_bytes_per_seq: Callable, max_concurrent_seqs: Callable,
                    shape, seq_len: int = 2048, gpu_gib: int = 24, weight_gib: int = 16) -> None:
    """Lab 00-02's report: bytes per token and per sequence, and users on one GPU, at
    fp16 and with an fp8 KV cache. ``shape`` has ``name``, ``num_layers``,
    ``num_kv_heads`` and ``head_dim``."""
    kib, mib, gib = 2**10, 2**20, 2**30
    per_token = kv_bytes_per_token(shape.num_layers, shape.num_kv_heads, shape.head_dim, 2)
    per_seq = kv_bytes_per_seq(per_token, seq_len)
    users = max_concurrent_seqs(gpu_gib * gib, weight_gib * gib, per_seq)
    print(f"{shape.name} fp16: {per_token:,} B/token = {per_token // kib} KiB")
    print(f"{seq_len:,}-token sequence: {per_seq // mib} MiB")
    print(f"{gpu_gib} GiB GPU, {weight_gib} GiB weights: {users} sequences")
    fp8 = max_concurrent_seqs(gpu_gib * gib, weight_gib * gib, kv_bytes_per_seq(per_token // 2, seq_len))
    print(f"same with an fp8 KV cache: {fp8} sequences")


# --- lab 00-04: the roofline of one forward step ---------------------------------------


def print_roofline(lab) -> None:
    """Lab 00-04's report on an 8B fp16 model and an A100, through the lab module's own
    functions (``lab`` is the starter or solution module)."""
    gpu, n_params = lab.A100, lab.N_PARAMS_8B
    ridge = lab.ridge_point(gpu.peak_flops, gpu.bandwidth)
    print(f"A100 ridge: {ridge:.0f} FLOPs/byte")
    for label, tokens in (("decode, batch 1", 1), ("decode, batch 64", 64), ("prefill, 2048", 2048)):
        ai = lab.arithmetic_intensity(tokens, 2)
        bound = "compute" if lab.is_compute_bound(ai, ridge) else "memory"
        print(f"{label:>17}: intensity {ai:>6.0f}, {bound}-bound, "
              f"{100 * lab.compute_utilization(ai, ridge):5.2f}% of peak, "
              f"step {1e3 * lab.step_time(n_params, 2, tokens, gpu):6.2f} ms")
    print(f"8B fp16 decode ceiling: {lab.decode_tokens_per_second(n_params, 2, 1, gpu):.0f} tok/s per sequence")
    print(f"critical batch: {lab.critical_batch_size(ridge, 2)}")
