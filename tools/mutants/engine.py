"""Bugs planted in mini_vllm's own modules; the engine's tests must kill >= 90% of them
(tools/mutate_labs.py). Each is a mistake a contributor could plausibly make."""

BP, BPT = "mini_vllm/block_pool.py", "mini_vllm/test_block_pool.py mini_vllm/test_engine.py mini_vllm/test_golden_traces.py"
KV, KVT = "mini_vllm/kv_cache.py", "mini_vllm/test_kv_cache.py mini_vllm/test_engine.py mini_vllm/test_golden_traces.py"
SA, SAT = "mini_vllm/sampler.py", "mini_vllm/test_sampler.py mini_vllm/test_engine.py"
RQ, RQT = "mini_vllm/request.py", "mini_vllm/test_request.py mini_vllm/test_engine.py"

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
    dict(file=KV, tests=KVT, name="hit-skips-miss", desc="a miss in the middle does not end the hit",
         find="                break  # chained hashes: nothing after a miss can hit", replace="                continue"),
    dict(file=KV, tests=KVT, name="evictable-hits-free", desc="hits with ref_cnt 0 are not counted against the free blocks",
         find="        return num_new + num_evictable", replace="        return num_new"),
    dict(file=KV, tests=KVT, name="ceil-to-floor", desc="blocks needed are floored, so a partial last block gets no slot",
         find="        num_required = cdiv(num_tokens, self.block_size)", replace="        num_required = num_tokens // self.block_size"),
    dict(file=KV, tests=KVT, name="free-head-first", desc="a request's blocks are freed head first, so its shared prefix is evicted before its tail",
         find="self.block_pool.free_blocks(reversed(blocks))", replace="self.block_pool.free_blocks(blocks)"),
    dict(file=KV, tests=KVT, name="cache-past-num-tokens", desc="blocks are cached for slots beyond the tokens that exist",
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
]
