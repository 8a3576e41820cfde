"""Lab 02-04 (reference): decode attention in Triton, reading K/V through a block table.

Shapes (vLLM's layout for one layer, K and V as separate tensors):

    q             [B, H, D]                         one new token per request
    k_cache       [num_blocks, block_size, Hkv, D]  physical blocks
    v_cache       [num_blocks, block_size, Hkv, D]
    block_tables  [B, max_blocks] int32              logical block -> physical block;
                                                     unused entries hold 0, the null block
    seq_lens      [B] int32                          tokens of context, this token included

Token ``t`` of request ``b`` lives at row ``t % block_size`` of physical block
``block_tables[b, t // block_size]``. That address is the only thing that distinguishes
this kernel from attention over a contiguous cache.

torch and triton are imported inside functions only, so that importing this file (and
the CPU test suite) never needs them. The kernel is a plain function that ``_kernel()``
compiles with ``triton.jit`` on first use; ``TRITON_INTERPRET=1`` (set before that first
use) runs it on the CPU instead.
"""
from __future__ import annotations

import math

tl = None  # triton.language, bound by _kernel() before the kernel is compiled or interpreted


def gather_kv(k_cache, v_cache, block_table, seq_len: int):
    """K and V of one request as contiguous [seq_len, Hkv, D] tensors.

    This copy is what the kernel avoids: it costs a full extra read and write of the
    context every decode step. Here it only feeds the reference.
    """
    import torch

    block_size = k_cache.shape[1]
    pos = torch.arange(seq_len, device=k_cache.device)
    blocks = block_table.to(torch.long)[pos // block_size]
    rows = pos % block_size
    return k_cache[blocks, rows], v_cache[blocks, rows]


def sdpa_reference(q, k_cache, v_cache, block_tables, seq_lens, scale: float | None = None):
    """torch's scaled_dot_product_attention, in fp32, over each request's gathered K/V.

    No causal mask: the single query is the last position and may see every key.
    Query head h reads KV head h // (H // Hkv) (GQA), which ``enable_gqa`` arranges.
    """
    import torch
    import torch.nn.functional as F

    out = torch.empty_like(q)
    for b in range(q.shape[0]):
        k, v = gather_kv(k_cache, v_cache, block_tables[b], int(seq_lens[b]))
        o = F.scaled_dot_product_attention(
            q[b, :, None, :].float(),  # [H, 1, D]
            k.transpose(0, 1).float(),  # [Hkv, T, D]
            v.transpose(0, 1).float(),
            scale=scale,
            enable_gqa=True,
        )
        out[b] = o[:, 0, :].to(q.dtype)
    return out


def _tile_scores(q, k_cache_ptr, block_tables_ptr, req, kv_head, offs_n, valid, offs_d, scale,
                 stride_kb, stride_kt, stride_kh, stride_tb, BLOCK_SIZE: tl.constexpr):
    """Task 2, inside the kernel: the scaled scores ``[GROUP_PAD, BLOCK_N]`` of the group's
    query heads against one tile of keys (``-inf`` where a position is not valid), and the
    tile's physical block ids and rows, which ``_fold_tile`` reuses to load V."""
    # The paging: logical block -> physical block, then the row inside it.
    physical = tl.load(block_tables_ptr + req * stride_tb + offs_n // BLOCK_SIZE, mask=valid, other=0)
    row = offs_n % BLOCK_SIZE
    k = tl.load(k_cache_ptr + physical[:, None] * stride_kb + row[:, None] * stride_kt
                + kv_head * stride_kh + offs_d[None, :], mask=valid[:, None], other=0.0)
    s = tl.dot(q, tl.trans(k)) * scale  # [GROUP_PAD, BLOCK_N], fp32
    s = tl.where(valid[None, :], s, float("-inf"))
    return s, physical, row


def _fold_tile(m, l, acc, s, v_cache_ptr, physical, row, valid, kv_head, offs_d,
               stride_vb, stride_vt, stride_vh):
    """Task 3, inside the kernel: fold one tile's scores ``s`` and its V into the running
    online-softmax state ``(m, l, acc)`` and return the new state."""
    m_new = tl.maximum(m, tl.max(s, axis=1))
    alpha = tl.exp(m - m_new)
    p = tl.exp(s - m_new[:, None])
    v = tl.load(v_cache_ptr + physical[:, None] * stride_vb + row[:, None] * stride_vt
                + kv_head * stride_vh + offs_d[None, :], mask=valid[:, None], other=0.0)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
    l = l * alpha + tl.sum(p, axis=1)
    return m_new, l, acc


def _paged_decode_kernel(
    q_ptr, k_cache_ptr, v_cache_ptr, block_tables_ptr, seq_lens_ptr, part_out_ptr, part_lse_ptr,
    scale,
    stride_qb, stride_qh,
    stride_kb, stride_kt, stride_kh,
    stride_vb, stride_vt, stride_vh,
    stride_tb,
    stride_pb, stride_ph, stride_ps,
    GROUP: tl.constexpr,
    GROUP_PAD: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    NUM_SPLITS: tl.constexpr,
):
    """One program = one (KV head, request, split). It serves all GROUP query heads that
    share the KV head, so each K/V byte is read from memory once, and walks its split's
    share of the context BLOCK_N tokens at a time with online softmax in fp32. It writes
    the split's normalised output and log-sum-exp; ``merge_splits`` combines the splits."""
    kv_head = tl.program_id(0)
    req = tl.program_id(1)
    split = tl.program_id(2)
    seq_len = tl.load(seq_lens_ptr + req)
    split_len = tl.cdiv(tl.cdiv(seq_len, NUM_SPLITS), BLOCK_N) * BLOCK_N
    lo = split * split_len
    hi = tl.minimum(lo + split_len, seq_len)

    offs_g = tl.arange(0, GROUP_PAD)
    offs_d = tl.arange(0, HEAD_DIM)
    heads = kv_head * GROUP + offs_g
    q = tl.load(q_ptr + req * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
                mask=offs_g[:, None] < GROUP, other=0.0)

    m = tl.full([GROUP_PAD], float("-inf"), tl.float32)
    l = tl.zeros([GROUP_PAD], tl.float32)
    acc = tl.zeros([GROUP_PAD, HEAD_DIM], tl.float32)
    for start in range(lo, hi, BLOCK_N):
        offs_n = start + tl.arange(0, BLOCK_N)
        valid = offs_n < hi
        s, physical, row = _tile_scores(q, k_cache_ptr, block_tables_ptr, req, kv_head, offs_n, valid, offs_d,
                                        scale, stride_kb, stride_kt, stride_kh, stride_tb, BLOCK_SIZE)
        m, l, acc = _fold_tile(m, l, acc, s, v_cache_ptr, physical, row, valid, kv_head, offs_d,
                               stride_vb, stride_vt, stride_vh)

    # An empty split (short sequence) has l = 0: write zeros and lse = -inf, weight 0 later.
    safe_l = tl.where(l > 0, l, 1.0)
    lse = tl.where(l > 0, m + tl.log(safe_l), float("-inf"))
    part = part_out_ptr + req * stride_pb + heads[:, None] * stride_ph + split * stride_ps + offs_d[None, :]
    tl.store(part, acc / safe_l[:, None], mask=offs_g[:, None] < GROUP)
    lse_ptr = part_lse_ptr + (req * tl.num_programs(0) * GROUP + heads) * NUM_SPLITS + split
    tl.store(lse_ptr, lse, mask=offs_g < GROUP)


_COMPILED = None


def _kernel():
    """``triton.jit`` the kernel once, after binding the module-level ``tl``."""
    global _COMPILED, tl, _tile_scores, _fold_tile
    if _COMPILED is None:
        import triton
        import triton.language

        tl = triton.language
        # The kernel calls the two task functions by their module names: jit them first.
        _tile_scores, _fold_tile = triton.jit(_tile_scores), triton.jit(_fold_tile)
        _COMPILED = triton.jit(_paged_decode_kernel)
    return _COMPILED


def merge_splits(part_out, part_lse):
    """Combine per-split results [B, H, S, D] / [B, H, S] into [B, H, D].

    Split s saw a share of the keys; its output is normalised by its own sum
    exp(lse_s). Reweighting by exp(lse_s - logsumexp(lse)) puts every split on the
    whole row's denominator (the flash-decoding merge; Phase 04 goes deeper).
    """
    import torch

    weights = torch.softmax(part_lse, dim=-1)  # empty splits have lse -inf -> weight 0
    return (weights[..., None] * part_out).sum(dim=2)


def default_num_splits(batch: int, num_kv_heads: int, max_seq_len: int, block_n: int,
                       target_programs: int = 512) -> int:
    """Enough splits that about ``target_programs`` programs run, never a split shorter
    than one tile. Few long requests need splits to keep every SM streaming."""
    splits = -(-target_programs // (batch * num_kv_heads))
    return max(1, min(splits, -(-max_seq_len // block_n)))


def paged_decode_attention(q, k_cache, v_cache, block_tables, seq_lens, scale: float | None = None,
                           block_n: int = 64, num_splits: int | None = None, num_warps: int = 4,
                           num_stages: int = 2):
    """Decode attention over the paged cache. Returns [B, H, D] in q's dtype.

    One program per (KV head, request, split). ``block_n`` tokens are processed per loop
    step and may span several physical blocks, so it is independent of ``block_size``.
    """
    import torch

    batch, num_heads, head_dim = q.shape
    num_kv_heads = k_cache.shape[2]
    if num_heads % num_kv_heads:
        raise ValueError(f"H={num_heads} must be a multiple of Hkv={num_kv_heads}")
    if head_dim & (head_dim - 1) or block_n & (block_n - 1) or head_dim < 16 or block_n < 16:
        raise ValueError("head_dim and block_n must be powers of two >= 16 (tl.dot tiles)")
    if k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1 or q.stride(-1) != 1:
        raise ValueError("the last dimension of q, k_cache and v_cache must be contiguous")
    group = num_heads // num_kv_heads
    scale = head_dim ** -0.5 if scale is None else scale
    if num_splits is None:
        num_splits = default_num_splits(batch, num_kv_heads, int(seq_lens.max()), block_n)
    part_out = torch.empty(batch, num_heads, num_splits, head_dim, dtype=torch.float32, device=q.device)
    part_lse = torch.empty(batch, num_heads, num_splits, dtype=torch.float32, device=q.device)
    kwargs = {} if q.device.type == "cpu" else {"num_warps": num_warps, "num_stages": num_stages}
    _kernel()[(num_kv_heads, batch, num_splits)](
        q, k_cache, v_cache, block_tables, seq_lens, part_out, part_lse,
        scale,
        q.stride(0), q.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        block_tables.stride(0),
        part_out.stride(0), part_out.stride(1), part_out.stride(2),
        GROUP=group,
        GROUP_PAD=max(16, 1 << (group - 1).bit_length()),
        BLOCK_SIZE=k_cache.shape[1],
        BLOCK_N=block_n,
        HEAD_DIM=head_dim,
        NUM_SPLITS=num_splits,
        **kwargs,
    )
    return merge_splits(part_out, part_lse).to(q.dtype)


def make_paged_inputs(seq_lens, num_heads: int, num_kv_heads: int, head_dim: int, block_size: int,
                      device: str = "cpu", dtype: str = "float16", seed: int = 0, extra_blocks: int = 3,
                      poison_null_block: bool = True):
    """Random q and a shuffled paged cache for ``seq_lens``.

    Each request gets ``ceil(len / block_size)`` distinct physical blocks in random
    order (never block 0); unused table entries are 0, the null block, which is filled
    with NaN when ``poison_null_block``: a kernel that reads it without masking returns
    NaN. Returns (q, k_cache, v_cache, block_tables, seq_lens) on ``device``.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    dt = getattr(torch, dtype)
    need = [-(-n // block_size) for n in seq_lens]
    max_blocks = max(need)
    num_blocks = 1 + sum(need) + extra_blocks
    perm = (torch.randperm(num_blocks - 1, generator=g) + 1).tolist()
    tables = torch.zeros(len(seq_lens), max_blocks, dtype=torch.int32)
    used = 0
    for b, n in enumerate(need):
        tables[b, :n] = torch.tensor(perm[used:used + n], dtype=torch.int32)
        used += n
    shape = (num_blocks, block_size, num_kv_heads, head_dim)
    k_cache = torch.randn(shape, generator=g).to(dt)
    v_cache = torch.randn(shape, generator=g).to(dt)
    if poison_null_block:
        k_cache[0] = float("nan")
        v_cache[0] = float("nan")
    q = torch.randn(len(seq_lens), num_heads, head_dim, generator=g).to(dt)
    lens = torch.tensor(seq_lens, dtype=torch.int32)
    return tuple(t.to(device) for t in (q, k_cache, v_cache, tables, lens))


def _bench_ms(fn) -> float:
    """Median milliseconds per call; triton.testing.do_bench flushes L2 between calls,
    so the K/V really come from HBM."""
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def benchmark(batch: int = 32, num_heads: int = 32, num_kv_heads: int = 8, head_dim: int = 128,
              seq_len: int = 8192, block_size: int = 16, block_n: int = 64, num_splits: int | None = None,
              num_warps: int = 4, num_stages: int = 2) -> dict:
    """Achieved HBM bandwidth of ``paged_decode_attention`` next to the device's copy
    bandwidth and vLLM's own Triton decode kernel, on one shape, in one process.

    Bytes counted = the K/V the step must read (every request's ``seq_len`` tokens,
    Hkv heads, K and V) plus q, the block tables and the output. Copy bandwidth =
    (read + write) bytes / time of ``dst.copy_(src)`` on a 1 GiB buffer. Physical blocks
    are a random permutation, so consecutive blocks of a request are far apart in memory.
    """
    import torch

    g = torch.Generator(device="cuda").manual_seed(0)
    blocks_per_seq = -(-seq_len // block_size)
    num_blocks = 1 + batch * blocks_per_seq
    k_cache = torch.randn(num_blocks, block_size, num_kv_heads, head_dim, generator=g, device="cuda",
                          dtype=torch.float16)
    v_cache = torch.randn(k_cache.shape, generator=g, device="cuda", dtype=torch.float16)
    perm = torch.randperm(num_blocks - 1, generator=g, device="cuda") + 1
    tables = perm.to(torch.int32).view(batch, blocks_per_seq)
    q = torch.randn(batch, num_heads, head_dim, generator=g, device="cuda", dtype=torch.float16)
    lens = torch.full((batch,), seq_len, dtype=torch.int32, device="cuda")

    elem = k_cache.element_size()
    kv_bytes = 2 * batch * seq_len * num_kv_heads * head_dim * elem
    io_bytes = kv_bytes + 2 * q.numel() * elem + tables.numel() * 4
    splits = num_splits or default_num_splits(batch, num_kv_heads, seq_len, block_n)
    result = {"shape": dict(batch=batch, num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=head_dim,
                            seq_len=seq_len, block_size=block_size, dtype=str(k_cache.dtype), num_splits=splits),
              "bytes": io_bytes}

    def run_ours():
        return paged_decode_attention(q, k_cache, v_cache, tables, lens, block_n=block_n, num_splits=splits,
                                      num_warps=num_warps, num_stages=num_stages)

    ours = run_ours()
    ref = sdpa_reference(q[:2], k_cache, v_cache, tables[:2], lens[:2])
    result["max_abs_diff_vs_sdpa"] = float((ours[:2].float() - ref.float()).abs().max())
    ms = _bench_ms(run_ours)
    result["kernel_ms"] = ms
    result["kernel_gbps"] = io_bytes / ms / 1e6

    src = torch.empty(1 << 29, dtype=torch.float16, device="cuda")
    dst = torch.empty_like(src)
    copy_ms = _bench_ms(lambda: dst.copy_(src))
    result["copy_gbps"] = 2 * src.numel() * src.element_size() / copy_ms / 1e6
    del src, dst
    result["fraction_of_copy"] = result["kernel_gbps"] / result["copy_gbps"]

    result["vllm_triton_ms"] = result["vllm_triton_gbps"] = None
    try:
        from vllm.v1.attention.ops.triton_decode_attention import decode_attention_fwd
    except Exception as exc:  # noqa: BLE001 - vllm absent or broken: report, do not fail
        result["vllm_note"] = f"{type(exc).__name__}: {exc}"[:160]
    else:
        num_kv_splits = 8
        o = torch.empty_like(q)
        lse = torch.empty(batch, num_heads, dtype=torch.float32, device="cuda")
        logits = torch.empty(batch, num_heads, num_kv_splits, head_dim + 1, dtype=torch.float32, device="cuda")

        def run_vllm():
            decode_attention_fwd(q, k_cache, v_cache, o, lse, tables, lens, logits, num_kv_splits,
                                 head_dim ** -0.5, block_size)

        run_vllm()
        result["vllm_max_abs_diff"] = float((o.float() - ours.float()).abs().max())
        vms = _bench_ms(run_vllm)
        result["vllm_triton_ms"] = vms
        result["vllm_triton_gbps"] = io_bytes / vms / 1e6
    return result


def format_benchmark(r: dict) -> str:
    s = r["shape"]
    lines = [
        f"B={s['batch']} H={s['num_heads']} Hkv={s['num_kv_heads']} D={s['head_dim']} "
        f"seq_len={s['seq_len']} block_size={s['block_size']} {s['dtype']} splits={s['num_splits']}  "
        f"({r['bytes'] / 2**30:.2f} GiB per step)",
        f"this kernel        : {r['kernel_ms']:.3f} ms  {r['kernel_gbps']:.0f} GB/s  "
        f"({r['fraction_of_copy']:.0%} of copy, max |diff| vs SDPA {r['max_abs_diff_vs_sdpa']:.1e})",
        f"device copy        : {r['copy_gbps']:.0f} GB/s (read + write)",
    ]
    if r.get("vllm_triton_ms") is not None:
        lines.append(f"vLLM triton decode : {r['vllm_triton_ms']:.3f} ms  {r['vllm_triton_gbps']:.0f} GB/s  "
                     f"(max |diff| vs this kernel {r['vllm_max_abs_diff']:.1e})")
    else:
        lines.append(f"vLLM triton decode : not run ({r.get('vllm_note', 'vllm missing')})")
    return "\n".join(lines)
