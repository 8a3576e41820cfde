"""Bugs planted in mini_vllm's own modules; the engine's tests must kill >= 90% of them
(tools/mutate_labs.py). Each is a mistake a contributor could plausibly make."""

BP, BPT = "mini_vllm/block_pool.py", "mini_vllm/test_block_pool.py mini_vllm/test_engine.py mini_vllm/test_golden_traces.py"
KV, KVT = "mini_vllm/kv_cache.py", "mini_vllm/test_kv_cache.py mini_vllm/test_engine.py mini_vllm/test_golden_traces.py"
SA, SAT = "mini_vllm/sampler.py", "mini_vllm/test_sampler.py mini_vllm/test_engine.py"
RQ, RQT = "mini_vllm/request.py", "mini_vllm/test_request.py mini_vllm/test_engine.py"
AT, ATT = "mini_vllm/attention.py", "mini_vllm/test_attention.py mini_vllm/test_model.py"
GE, GET = "mini_vllm/gemm.py", "mini_vllm/test_gemm.py"
MO, MOT = "mini_vllm/moe.py", "mini_vllm/test_moe.py"
CG, CGT = "mini_vllm/cudagraph.py", "mini_vllm/test_cudagraph.py"
QU, QUT = "mini_vllm/quant.py", "mini_vllm/test_quant.py"
AT, ATT = "mini_vllm/attention.py", "mini_vllm/test_attention.py mini_vllm/test_model.py"
GE, GET = "mini_vllm/gemm.py", "mini_vllm/test_gemm.py"
MO, MOT = "mini_vllm/moe.py", "mini_vllm/test_moe.py"
CG, CGT = "mini_vllm/cudagraph.py", "mini_vllm/test_cudagraph.py"
QU, QUT = "mini_vllm/quant.py", "mini_vllm/test_quant.py"

SO, SOM, SOT = "mini_vllm/engine.py", "mini_vllm/structured_output.py", "mini_vllm/test_structured_output.py"

MUTANTS = [
    # ---------------------------------------------------------------- block pool
    dict(file=BP, tests=BPT, name="hash-ignores-parent", desc="a block's hash leaves out its parent, so equal blocks after different prefixes collide",
         find="    parent = parent_block_hash or NONE_HASH\n    tokens", replace="    parent = NONE_HASH\n    tokens"),
    dict(file=BP, tests=BPT, name="hash-partial-tail", desc="the hasher also hashes the partial last block",
         find="while start + block_size <= len(tokens):", replace="while start < len(tokens):"),
    dict(file=BP, tests=BPT, name="append-to-front", desc="freed blocks go to the front of the free queue, so the newest free block is evicted first",
         find="""        last = self.fake_free_list_tail.prev_free_block
        last.next_free_block = block
        block.prev_free_block = last
        block.next_free_block = self.fake_free_list_tail
        self.fake_free_list_tail.prev_free_block = block""",
         replace="""        first = self.fake_free_list_head.next_free_block
        first.prev_free_block = block
        block.next_free_block = first
        block.prev_free_block = self.fake_free_list_head
        self.fake_free_list_head.next_free_block = block"""),
    dict(file=BP, tests=BPT, name="no-evict-on-reuse", desc="a reused free block keeps its stale hash in the prefix-cache index",
         find="            if self.enable_caching:\n                self._maybe_evict_cached_block(block)\n", replace=""),
    dict(file=BP, tests=BPT, name="touch-no-remove", desc="a prefix hit with ref_cnt 0 is not taken out of the free queue",
         find="            if block.ref_cnt == 0 and not block.is_null:\n                self.free_block_queue.remove(block)\n", replace=""),
    dict(file=BP, tests=BPT, name="free-any-refcount", desc="free_blocks returns a block to the queue even while others still hold it",
         find="self.free_block_queue.append_n(b for b in blocks if b.ref_cnt == 0 and not b.is_null)",
         replace="self.free_block_queue.append_n(b for b in blocks if b.ref_cnt <= 1 and not b.is_null)"),
    dict(file=BP, tests=BPT, name="null-block-handed-out", desc="the null block is not popped at construction, so it can be handed out",
         find="        self.null_block = self.free_block_queue.popleft()\n",
         replace="        self.null_block = self.blocks[0]\n"),
    dict(file=BP, tests=BPT, name="reset-while-in-use", desc="reset_prefix_cache forgets hashes while blocks are in use",
         find="        if self.get_num_free_blocks() != self.num_blocks - 1:\n            return False\n", replace=""),
    dict(file=BP, tests=BPT, name="usage-counts-null", desc="usage divides by all blocks including the null block",
         find="        total = self.num_blocks - 1\n", replace="        total = self.num_blocks\n"),
    dict(file=BP, tests=BPT, name="cached-block-latest", desc="get_cached_block returns the most recently cached of equal blocks",
         find="        return next(iter(blocks.values())) if blocks else None",
         replace="        return list(blocks.values())[-1] if blocks else None"),
    # ---------------------------------------------------------------- KV-cache manager
    dict(file=KV, tests=KVT, name="hit-to-last-token", desc="a prefix hit may cover the last prompt token, leaving nothing to compute logits from",
         find="max_num_blocks = (request.num_tokens - 1) // self.block_size", replace="max_num_blocks = request.num_tokens // self.block_size"),
    dict(file=KV, tests=KVT, name="hit-skips-miss", equivalent=True,
         desc="a miss in the middle does not end the hit. Equivalent: hashes are chained, so no block after a miss can hit (only slower)",
         find="                break  # chained hashes: nothing after a miss can hit", replace="                continue"),
    dict(file=KV, tests=KVT, name="evictable-hits-free", desc="hits with ref_cnt 0 are not counted against the free blocks",
         find="        return num_new + num_evictable", replace="        return num_new"),
    dict(file=KV, tests=KVT, name="ceil-to-floor", desc="blocks needed are floored, so a partial last block gets no slot",
         find="        num_required = cdiv(num_tokens, self.block_size)", replace="        num_required = num_tokens // self.block_size"),
    dict(file=KV, tests=KVT, name="free-head-first", desc="a request's blocks are freed head first, so its shared prefix is evicted before its tail",
         find="self.block_pool.free_blocks(reversed(blocks))", replace="self.block_pool.free_blocks(blocks)"),
    dict(file=KV, tests=KVT, name="cache-past-num-tokens", equivalent=True,
         desc="blocks are cached for slots beyond the tokens that exist. Equivalent until speculative lookahead exists: the scheduler never asks for more slots than tokens",
         find="self.cache_blocks(request, min(num_computed + num_new_tokens, request.num_tokens))",
         replace="self.cache_blocks(request, num_computed + num_new_tokens)"),
    dict(file=KV, tests=KVT, name="no-model-len-cap", desc="slots are not capped at max_model_len",
         find="            num_tokens_need_slot = min(num_tokens_need_slot, self.max_model_len)", replace="            pass"),
    dict(file=KV, tests=KVT, name="stats-count-hits-as-queries", desc="prefix-cache queries count only the hit tokens",
         find="        self.prefix_cache_stats.queries += request.num_tokens", replace="        self.prefix_cache_stats.queries += num_hit_tokens"),
    # ---------------------------------------------------------------- sampler
    dict(file=SA, tests=SAT, name="top-k-strict", desc="top-k keeps only values strictly above the k-th, dropping ties at the boundary",
         find="return np.where(logits >= kth, logits, -np.inf)", replace="return np.where(logits > kth, logits, -np.inf)"),
    dict(file=SA, tests=SAT, name="top-p-excludes-crossing", desc="top-p drops the token that crosses p",
         find="n_keep = int(reached[0]) + 1 if reached.size else len(order)", replace="n_keep = max(int(reached[0]), 1) if reached.size else len(order)"),
    dict(file=SA, tests=SAT, name="min-p-absolute", desc="min-p compares probabilities to min_p, not min_p times the top probability",
         find="return np.where(probs < min_p * probs.max(), -np.inf, logits)", replace="return np.where(probs < min_p, -np.inf, logits)"),
    dict(file=SA, tests=SAT, name="temperature-after-filters", desc="temperature is applied after top-k/top-p instead of first",
         find="        x = logits / params.temperature\n        x = apply_min_p(x, params.min_p)",
         replace="        x = apply_min_p(logits, params.min_p)"),
    dict(file=SA, tests=SAT, name="searchsorted-left", desc="the inverse-CDF draw uses side='left'",
         find='idx = int(np.searchsorted(cum, generator.random(), side="right"))', replace='idx = int(np.searchsorted(cum, generator.random(), side="left"))'),
    dict(file=SA, tests=SAT, name="engine-seed-ignored", desc="unseeded requests share one generator stream (request id ignored)",
         find='digest = hashlib.sha256(f"{engine_seed}:{request_id}".encode()).digest()', replace='digest = hashlib.sha256(f"{engine_seed}".encode()).digest()'),
    dict(file=SA, tests=SAT, name="greedy-threshold", desc="greedy only at temperature exactly 0",
         find="return self.temperature < _SAMPLING_EPS", replace="return self.temperature == 0"),
    # ---------------------------------------------------------------- request / stop
    dict(file=RQ, tests=RQT, name="stop-length-before-eos", desc="the length cap is checked before EOS",
         find="    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:",
         replace="    if request.num_output_tokens >= params.max_tokens:\n        request.status = RequestStatus.FINISHED_LENGTH\n        return True\n    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:"),
    dict(file=RQ, tests=RQT, name="stop-ignores-ignore-eos", desc="EOS stops the request even with ignore_eos",
         find="    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:",
         replace="    if request.eos_token_id is not None and last == request.eos_token_id:"),
    dict(file=RQ, tests=RQT, name="max-model-len-off-by-one", desc="a request may grow one token past max_model_len",
         find="max_model_len is not None and request.num_tokens >= max_model_len", replace="max_model_len is not None and request.num_tokens > max_model_len"),

    # ---------------------------------------------------------------- attention
    dict(file=AT, tests=ATT, name="scale-ignored", desc="a caller's scale is ignored: always 1/sqrt(head_dim)",
         find="    scale = q.shape[2] ** -0.5 if scale is None else scale", replace="    scale = q.shape[2] ** -0.5"),
    dict(file=AT, tests=ATT, name="causal-strict", desc="a query cannot see its own key (< instead of <=)",
         find="    return kpos <= qpos", replace="    return kpos < qpos"),
    dict(file=AT, tests=ATT, name="write-padding", desc="padding slots (-1) are written too, into the last slot",
         find="    keep = slots >= 0\n", replace="    keep = slots >= -1\n"),
    dict(file=AT, tests=ATT, name="merge-no-rescale", desc="two partitions are merged without rescaling to the joint max",
         find="    return AttentionState(m, wa * a.l + wb * b.l, wa[..., None] * a.acc + wb[..., None] * b.acc)",
         replace="    return AttentionState(m, a.l + b.l, a.acc + b.acc)"),
    dict(file=AT, tests=ATT, name="finalize-nan", desc="a query that saw no key is divided by zero",
         find="    return np.divide(state.acc, l, out=np.zeros_like(state.acc), where=l > 0)", replace="    return state.acc / l"),
    dict(file=AT, tests=ATT, name="slot-offset-unwrapped", desc="slot = block * block_size + position, without taking the position mod block_size",
         find="    return blocks * block_size + positions % block_size", replace="    return blocks * block_size + positions"),
    # ---------------------------------------------------------------- GEMM
    dict(file=GE, tests=GET, name="tile-k-overwrite", desc="each K slice overwrites the accumulator instead of adding to it",
         find="                acc += a[m0:m1, k0:k1] @ b[k0:k1, n0:n1]", replace="                acc = a[m0:m1, k0:k1] @ b[k0:k1, n0:n1]"),
    dict(file=GE, tests=GET, name="traffic-tiles-swapped", desc="A is re-read once per row tile instead of once per column tile",
         find="    return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)",
         replace="    return M * K * math.ceil(M / tile_m) + K * N * math.ceil(N / tile_n)"),
    dict(file=GE, tests=GET, name="traffic-floor", desc="partial tiles are not counted (floor instead of ceil)",
         find="    return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)",
         replace="    return M * K * max(N // tile_n, 1) + K * N * max(M // tile_m, 1)"),
    dict(file=GE, tests=GET, name="intensity-no-write", desc="arithmetic intensity forgets the write of C",
         find="    bytes_moved = (tiled_traffic(M, N, K, tile_m, tile_n) + M * N) * dtype_bytes",
         replace="    bytes_moved = tiled_traffic(M, N, K, tile_m, tile_n) * dtype_bytes"),
    dict(file=GE, tests=GET, name="smem-ignores-stages", desc="shared memory ignores the pipeline stages",
         find="    return num_stages * (tile_m + tile_n) * tile_k * dtype_bytes", replace="    return (tile_m + tile_n) * tile_k * dtype_bytes"),
    dict(file=GE, tests=GET, name="smem-ignores-dtype", desc="shared memory counts elements, not bytes",
         find="    return num_stages * (tile_m + tile_n) * tile_k * dtype_bytes", replace="    return num_stages * (tile_m + tile_n) * tile_k"),
    # ---------------------------------------------------------------- MoE
    dict(file=MO, tests=MOT, name="topk-ties-to-higher-id", desc="experts with equal scores go to the higher id first",
         find='    topk_ids = np.argsort(-probs, axis=-1, kind="stable")[:, :topk]',
         replace='    topk_ids = (probs.shape[1] - 1 - np.argsort(-probs[:, ::-1], axis=-1, kind="stable"))[:, :topk]'),
    dict(file=MO, tests=MOT, name="no-renormalize", desc="renormalize is ignored: weights stay full-softmax probabilities",
         find="    if renormalize:\n        denom", replace="    if False:\n        denom"),
    dict(file=MO, tests=MOT, name="unpermute-buffered", desc="unpermute uses a buffered += so repeated token rows overwrite each other",
         find="    np.add.at(out, permuted_idx // k, weights[:, None] * permuted_out)",
         replace="    out[permuted_idx // k] += weights[:, None] * permuted_out"),
    dict(file=MO, tests=MOT, name="permute-slot-as-token", desc="the gathered row is indexed by the slot, not the token (slot // k)",
         find="    permuted_hidden_states = hidden_states[permuted_idx // k]",
         replace="    permuted_hidden_states = hidden_states[permuted_idx % hidden_states.shape[0]]"),
    dict(file=MO, tests=MOT, name="align-floor", desc="expert runs are padded down instead of up to the block size",
         find="    padded = -(-counts // block_size) * block_size", replace="    padded = np.maximum(counts // block_size, 1) * block_size"),
    # ---------------------------------------------------------------- CUDA graphs
    dict(file=CG, tests=CGT, name="rung-bisect-right", desc="a batch equal to a rung pads to the next rung",
         find="    i = bisect.bisect_left(sizes, num_tokens)", replace="    i = bisect.bisect_right(sizes, num_tokens)"),
    dict(file=CG, tests=CGT, name="stale-padding", desc="padding rows keep the previous batch's data",
         find="        entry.static_input[n:] = 0\n", replace=""),
    dict(file=CG, tests=CGT, name="ladder-every-16", desc="the ladder steps by 16 below 256 too",
         find="        sizes += list(range(8, min(max_capture_size + 1, 256), 8))",
         replace="        sizes += list(range(8, min(max_capture_size + 1, 256), 16))"),
    dict(file=CG, tests=CGT, name="budget-not-a-rung", desc="the token budget is never added as a rung",
         find="    if max_num_batched_tokens is not None and max_num_batched_tokens <= max_capture_size:\n        sizes.append(max_num_batched_tokens)",
         replace="    pass"),
    dict(file=CG, tests=CGT, name="max-size-no-x2", desc="the ladder's top forgets the factor of 2",
         find="    return min(max_num_batched_tokens, min(max_num_seqs * q * 2, 512))",
         replace="    return min(max_num_batched_tokens, min(max_num_seqs * q, 512))"),
    # ---------------------------------------------------------------- quantization
    dict(file=QU, tests=QUT, name="clip-before-round", desc="values are clipped before rounding (127.6 rounds to 128 and wraps)",
         find="    return np.clip(np.rint(v), -qmax, qmax).astype(np.int8)",
         replace="    return np.rint(np.clip(v, -qmax - 1, qmax + 1)).astype(np.int8)"),
    dict(file=QU, tests=QUT, name="truncate-not-round", desc="values are truncated toward zero instead of rounded",
         find="    return np.clip(np.rint(v), -qmax, qmax).astype(np.int8)",
         replace="    return np.clip(np.trunc(v), -qmax, qmax).astype(np.int8)"),
    dict(file=QU, tests=QUT, name="zero-scale", desc="an all-zero row gets scale 0 (NaN on division)",
         find="    return np.where(scale == 0, np.float32(1.0), scale).astype(np.float32)", replace="    return scale.astype(np.float32)"),
    dict(file=QU, tests=QUT, name="per-channel-columns", desc="per-channel scales are taken over input columns instead of output rows",
         find="    scales = _scale_from_absmax(np.max(np.abs(w), axis=1), qmax)\n    return _round_and_clip(w / scales[:, None], qmax), scales",
         replace="    scales = _scale_from_absmax(np.max(np.abs(w), axis=0), qmax)\n    return _round_and_clip(w / scales[None, :], qmax), scales"),
    dict(file=QU, tests=QUT, name="pack-nibbles-swapped", desc="the even column goes in the high nibble",
         find="    return (u[..., 0::2] | (u[..., 1::2] << 4)).astype(np.uint8)",
         replace="    return ((u[..., 0::2] << 4) | u[..., 1::2]).astype(np.uint8)"),
    dict(file=QU, tests=QUT, name="smooth-alpha-flipped", desc="SmoothQuant's exponents are swapped (alpha on the weights)",
         find="    s[ok] = xa[ok] ** alpha / wa[ok] ** (1.0 - alpha)", replace="    s[ok] = xa[ok] ** (1.0 - alpha) / wa[ok] ** alpha"),
    # ------------------------------------------------------------ structured outputs (phase 12)
    dict(file=SO, tests=SOT, name="mask-after-sampling-order",
         desc="the engine never applies the grammar bitmask, so the mask is computed and ignored",
         find="            apply_grammar_bitmask(grammar_output, sample_ids, logits)\n", replace=""),
    dict(file=SOM, tests=SOT, name="eos-legal-anywhere",
         desc="EOS is legal in every state, not only accepting ones",
         find="            return state if self.dfa.accepting[state] else -1", replace="            return state"),
    dict(file=SOM, tests=SOT, name="first-byte-lifting",
         desc="a token is judged by its first byte only",
         find="        return self.dfa.walk(state, self.token_bytes[token_id])",
         replace="        return self.dfa.walk(state, self.token_bytes[token_id][:1])"),
    dict(file=SOM, tests=SOT, name="bitmask-big-endian",
         desc="packs bits most-significant first, not xgrammar's little-endian order",
         find='    return np.packbits(padded, bitorder="little").view("<i4").astype(np.int32)',
         replace='    return np.packbits(padded, bitorder="big").view("<i4").astype(np.int32)'),
    dict(file=SOM, tests=SOT, name="no-dead-state-pruning",
         desc="keeps DFA states that can never accept, so a token may lead into a dead end",
         find="        grown = live | ((trans >= 0) & live[np.maximum(trans, 0)]).any(axis=1)",
         replace="        grown = np.ones_like(live)"),
    dict(file=SOM, tests=SOT, name="rollback-keeps-termination",
         desc="rollback forgets to clear the terminated flag",
         find="            del self.states[-num_tokens:]\n            self._is_terminated = False",
         replace="            del self.states[-num_tokens:]"),
    dict(file=SOM, tests=SOT, name="grammar-not-advanced",
         desc="the manager never advances grammars after a step",
         find="            if not grammar.accept_tokens(rid, [int(token)]):", replace="            if False:"),
    dict(file=SOM, tests=SOT, name="choice-unescaped",
         desc="choices are joined without escaping regex metacharacters",
         find='        return "|".join(regex_escape(c) for c in json.loads(spec))',
         replace='        return "|".join(json.loads(spec))'),
    dict(file=SOM, tests=SOT, name="rep-upper-bound-off-by-one",
         desc="{m,n} allows n+1 repetitions",
         find="                for _ in range(hi - lo):", replace="                for _ in range(hi - lo + 1):"),
]

