"""Learner bugs for phase 09's labs (see tools/mutate_labs.py for the format)."""

L1, L2, L3, L4 = ("lab-01-sampling-ops", "lab-02-parallel-sampling", "lab-03-beam-search",
                  "lab-04-seeded-rng-batch-invariance")

MUTANTS = [
    # ---- lab-01: sampling ops
    dict(lab=L1, name="repetition-divides-every-sign",
         desc="divides every seen logit by the penalty, which raises negative ones",
         find="x[t] = x[t] / repetition_penalty if x[t] > 0 else x[t] * repetition_penalty",
         replace="x[t] = x[t] / repetition_penalty"),
    dict(lab=L1, name="repetition-output-only",
         desc="applies the repetition penalty to output tokens only, as older write-ups say",
         find="seen = sorted(set(prompt_token_ids) | set(counts))",
         replace="seen = sorted(set(counts))"),
    dict(lab=L1, name="repetition-per-occurrence",
         desc="applies the repetition penalty once per occurrence instead of once per token",
         find="    seen = sorted(set(prompt_token_ids) | set(counts))\n",
         replace="    seen = list(prompt_token_ids) + list(output_token_ids)\n"),
    dict(lab=L1, name="presence-scaled-by-count",
         desc="subtracts the presence penalty once per occurrence, like frequency",
         find="x[t] -= frequency_penalty * c + presence_penalty",
         replace="x[t] -= (frequency_penalty + presence_penalty) * c"),
    dict(lab=L1, name="frequency-counts-prompt",
         desc="counts prompt tokens for the frequency and presence penalties",
         find="    counts = Counter(output_token_ids)\n    seen",
         replace="    counts = Counter(list(prompt_token_ids) + list(output_token_ids))\n    seen"),
    dict(lab=L1, name="bad-word-ignores-prefix",
         desc="bans the last token of every bad word without checking its prefix",
         find="if len(prefix) <= len(past) and past[len(past) - len(prefix):] == list(prefix):",
         replace="if len(prefix) <= len(past):"),
    dict(lab=L1, name="min-p-absolute",
         desc="uses min_p as an absolute probability floor instead of relative to the top token",
         find="x[probs < min_p * probs.max()] = -np.inf",
         replace="x[probs < min_p] = -np.inf"),
    dict(lab=L1, name="min-p-drops-the-tie",
         desc="drops a token exactly at the min-p cutoff",
         find="x[probs < min_p * probs.max()] = -np.inf",
         replace="x[probs <= min_p * probs.max()] = -np.inf"),
    dict(lab=L1, name="penalty-before-bias",
         desc="applies the penalties before logit_bias",
         find="""    x = apply_logit_bias(x, params.logit_bias)
    return apply_penalties(x, prompt_token_ids, output_token_ids, params.presence_penalty,
                           params.frequency_penalty, params.repetition_penalty)""",
         replace="""    x = apply_penalties(x, prompt_token_ids, output_token_ids, params.presence_penalty,
                        params.frequency_penalty, params.repetition_penalty)
    return apply_logit_bias(x, params.logit_bias)"""),
    dict(lab=L1, name="min-tokens-forgets-eos",
         desc="holds back the stop ids but not EOS until min_tokens",
         find="stops = set(params.stop_token_ids) | ({eos_token_id} if eos_token_id is not None else set())",
         replace="stops = set(params.stop_token_ids)"),
    dict(lab=L1, name="description-order-p-then-min-p",
         desc="the course description's order: top-k, top-p, then min-p",
         find="""    x = apply_min_p(np.asarray(logits, dtype=np.float64) / params.temperature, params.min_p)
    return apply_top_p(apply_top_k(x, params.top_k), params.top_p)""",
         replace="""    x = np.asarray(logits, dtype=np.float64) / params.temperature
    return apply_min_p(apply_top_p(apply_top_k(x, params.top_k), params.top_p), params.min_p)"""),
    dict(lab=L1, name="min-p-before-temperature",
         desc="applies min-p to the untempered logits",
         find="    x = apply_min_p(np.asarray(logits, dtype=np.float64) / params.temperature, params.min_p)\n",
         replace="    x = apply_min_p(np.asarray(logits, dtype=np.float64), params.min_p) / params.temperature\n"),
    dict(lab=L1, name="greedy-skips-processors",
         desc="greedy returns the raw argmax, before penalties and bias",
         find="""    if params.greedy:
        return int(np.argmax(x))
    x = truncate(x, params)""",
         replace="""    if params.greedy:
        return int(np.argmax(logits))
    x = truncate(x, params)"""),
    dict(lab=L1, name="draw-side-left",
         desc="looks the random number up with side='left', shifting boundary draws",
         find='idx = int(np.searchsorted(cum, generator.random(), side="right"))',
         replace='idx = int(np.searchsorted(cum, generator.random(), side="left"))'),
    dict(lab=L1, name="greedy-burns-a-draw",
         desc="draws a random number even for greedy requests",
         find="""    x = process_logits(logits, params, prompt_token_ids, output_token_ids, eos_token_id)
    if params.greedy:""",
         replace="""    x = process_logits(logits, params, prompt_token_ids, output_token_ids, eos_token_id)
    generator.random()
    if params.greedy:"""),

    # ---- lab-02: parallel sampling
    dict(lab=L2, name="same-seed-for-every-child",
         desc="copies the parent's seed to every child",
         find="seed=None if params.seed is None else params.seed + i",
         replace="seed=params.seed"),
    dict(lab=L2, name="child-id-order-swapped",
         desc="names children '{request_id}_{i}' instead of upstream's '{i}_{request_id}'",
         find='f"{i}_{request_id}"', replace='f"{request_id}_{i}"'),
    dict(lab=L2, name="child-keeps-n",
         desc="forgets to set n=1 on the children",
         find="params.replace(n=1, seed=", replace="params.replace(seed="),
    dict(lab=L2, name="last-token-cacheable",
         desc="lets a hit cover the block holding the last prompt token",
         find="[(prompt_len - 1) // block_size * block_size] * (n - 1)",
         replace="[prompt_len // block_size * block_size] * (n - 1)"),
    dict(lab=L2, name="first-child-hits-too",
         desc="predicts a hit for the first child as well",
         find="return [0] + [(prompt_len - 1) // block_size * block_size] * (n - 1)",
         replace="return [(prompt_len - 1) // block_size * block_size] * n"),
    dict(lab=L2, name="rate-over-n-minus-one",
         desc="divides the hits by the children that can hit instead of by every lookup",
         find="return sum(predict_cached_tokens(prompt_len, n, block_size)) / (n * prompt_len)",
         replace="return sum(predict_cached_tokens(prompt_len, n, block_size)) / (max(n - 1, 1) * prompt_len)"),
    dict(lab=L2, name="prefill-counts-decode",
         desc="counts every scheduled token as prefill",
         find="prefill_tokens=scheduled - n * (max_tokens - 1)", replace="prefill_tokens=scheduled"),

    # ---- lab-03: beam search
    dict(lab=L3, name="score-keeps-eos-in-length",
         desc="counts a final EOS in the length",
         find="seq_len = len(tokens) - (eos_token_id is not None and tokens[-1] == eos_token_id)",
         replace="seq_len = len(tokens)"),
    dict(lab=L3, name="score-without-prompt",
         desc="scores by the output length only (leaves out the prompt)",
         find="""    def key(h):
        return beam_score(h[0], h[1], eos_token_id, length_penalty)""",
         replace="""    def key(h):
        return beam_score(h[0][n - 1:], h[1], eos_token_id, length_penalty)"""),
    dict(lab=L3, name="greedy-ties-highest-id",
         desc="breaks greedy ties toward the highest id",
         find="        t = int(np.argmax(lp))\n",
         replace="        t = int(len(lp) - 1 - np.argmax(lp[::-1]))\n"),
    dict(lab=L3, name="greedy-drops-eos",
         desc="stops at EOS without appending it",
         find="""        t = int(np.argmax(lp))
        tokens.append(t)
        total += float(lp[t])
        if t == eos_token_id:
            break""",
         replace="""        t = int(np.argmax(lp))
        if t == eos_token_id:
            break
        tokens.append(t)
        total += float(lp[t])"""),
    dict(lab=L3, name="extends-finished-beams",
         desc="keeps EOS children in the live pool, so they are extended past EOS",
         find="(finished if t == eos_token_id else children).append(child)",
         replace="children.append(child)"),
    dict(lab=L3, name="one-candidate-per-beam",
         desc="expands each beam by its single best token",
         find="[: 2 * beam_width].tolist()", replace="[:1].tolist()"),
    dict(lab=L3, name="prune-by-raw-logprob", equivalent=True,
         desc="prunes live beams by summed log-prob, ignoring the length penalty. Equivalent: live beams "
              "of one step all have the same length, so the score is a fixed monotone function of the sum",
         find="live = sorted(children, key=key, reverse=True)[:beam_width]",
         replace="live = sorted(children, key=lambda h: h[1], reverse=True)[:beam_width]"),
    dict(lab=L3, name="finished-lose-to-live",
         desc="returns finished beams only when no live beam is left",
         find="best = sorted(finished + live, key=key, reverse=True)[:beam_width]",
         replace="best = (sorted(live, key=key, reverse=True) or sorted(finished, key=key, reverse=True))[:beam_width]"),

    # ---- lab-04: seeded RNG
    dict(lab=L4, name="seed-zero-is-unseeded",
         desc="tests the seed for truthiness, so seed 0 falls back to the request-id stream",
         find="seed = params.seed if params.seed is not None else",
         replace="seed = params.seed if params.seed else"),
    dict(lab=L4, name="python-hash",
         desc="seeds unseeded requests with Python's salted hash()",
         find="else stable_request_seed(engine_seed, request_id)",
         replace="else abs(hash((engine_seed, request_id)))"),
    dict(lab=L4, name="ignores-engine-seed",
         desc="derives the fallback seed from the request id alone",
         find="else stable_request_seed(engine_seed, request_id)",
         replace="else stable_request_seed(0, request_id)"),
    dict(lab=L4, name="reseed-every-step",
         desc="makes a fresh generator at every draw: the same number each step",
         find="return self.sampler.sample(logits, params, self.generators[request_id], **context)",
         replace="return self.sampler.sample(logits, params, request_generator(params, self.engine_seed, request_id), **context)"),
    dict(lab=L4, name="never-forgets",
         desc="finish_request keeps the generator, so a recycled id continues the old stream",
         find="        del self.generators[request_id]\n", replace="        pass\n"),
    dict(lab=L4, name="add-overwrites",
         desc="silently replaces a live request's generator",
         find="""        if request_id in self.generators:
            raise ValueError(f"request {request_id!r} is already live")
""", replace=""),
    dict(lab=L4, name="batch-in-sorted-order",
         desc="pairs rows with requests in sorted id order instead of row order",
         find="for rid, row, p in zip(request_ids, logits, params_list)]",
         replace="for rid, row, p in zip(sorted(request_ids), logits, params_list)]"),
]
