"""Learner bugs for phase 01's labs (see tools/mutate_labs.py for the format)."""

L1 = "lab-01-trace-a-request"
L2 = "lab-02-read-the-real-loop"
L3 = "lab-03-engine-step-by-hand"
L4 = "lab-04-watch-the-batch"
L5 = "lab-05-stop-conditions"

MUTANTS = [
    # --- lab-01: trace a request ------------------------------------------------------------
    dict(lab=L1, name="running-only",
         desc="photographs only scheduler.running, so the step that finishes the request records nothing",
         find="for request in list(core.scheduler.running) + result.finished:",
         replace="for request in list(core.scheduler.running):"),
    dict(lab=L1, name="eos-not-ignored",
         desc="leaves ignore_eos off, so the trace's length depends on whether the model samples EOS",
         find="SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)",
         replace="SamplingParams(temperature=0.0, max_tokens=max_tokens)"),
    dict(lab=L1, name="default-temperature",
         desc="forgets temperature=0, so the request samples at the default temperature",
         find="SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)",
         replace="SamplingParams(max_tokens=max_tokens, ignore_eos=True)"),
    dict(lab=L1, name="no-eos-id",
         desc="builds the request without the tokenizer's EOS id",
         find="return Request(REQUEST_ID, tokenizer.encode(prompt), params, eos_token_id=tokenizer.eos_token_id)",
         replace="return Request(REQUEST_ID, tokenizer.encode(prompt), params)"),
    dict(lab=L1, name="status-enum",
         desc="records the enum member itself instead of its name (an IntEnum never equals the string)",
         find="return Event(request.request_id, request.status.name,",
         replace="return Event(request.request_id, request.status,"),
    dict(lab=L1, name="prompt-length-as-num-tokens",
         desc="records the prompt length as num_tokens, forgetting the sampled tokens",
         find="request.num_computed_tokens, request.num_tokens)",
         replace="request.num_computed_tokens, len(request.prompt_token_ids))"),
    dict(lab=L1, name="engine-kwargs-dropped",
         desc="builds the engine with default settings, ignoring the caller's engine arguments",
         find="core = EngineCore(EngineConfig.create(**engine_kwargs))",
         replace="core = EngineCore(EngineConfig.create())"),
    dict(lab=L1, name="snapshot-before-step",
         desc="photographs the running queue before stepping, so every event lags one step behind",
         find="""        result = core.step()
        for request in list(core.scheduler.running) + result.finished:
            events.append(snapshot(request))""",
         replace="""        before = list(core.scheduler.running)
        result = core.step()
        for request in before + [r for r in result.finished if r not in before]:
            events.append(snapshot(request))"""),
    # --- lab-02: read the real loop (its CPU parts: probe, line map, log parsers) -------------
    dict(lab=L2, name="no-finally",
         desc="restores the wrapped methods only after a step that did not raise",
         find="""    try:
        core.step()
    finally:
        for name, owner in targets.items():""",
         replace="""    if True:
        core.step()
    if True:
        for name, owner in targets.items():"""),
    dict(lab=L2, name="restore-by-setattr",
         desc="puts the saved bound method back as an instance attribute instead of deleting the wrapper",
         find="""            if saved[name] is None:
                delattr(owner, name)  # the class's method shows through again
            else:
                setattr(owner, name, saved[name])""",
         replace="""            setattr(owner, name, saved[name] if saved[name] is not None else getattr(type(owner), name).__get__(owner))"""),
    dict(lab=L2, name="zero-based-lines",
         desc="reports 0-based line numbers (list indices) instead of the 1-based ones an editor shows",
         find="    return lines[stage]", replace="    return lines[stage] - 1"),
    dict(lab=L2, name="unknown-stage-keyerror",
         desc="lets an unknown stage fall through to a KeyError instead of the ValueError asked for",
         find="""    if stage not in lines:
        raise ValueError(f"unknown stage {stage!r}; stages are {STAGES}")
""", replace=""),
    dict(lab=L2, name="match-not-search",
         desc="matches the pattern at the start of the line, so vLLM's log prefix hides every iteration line",
         find="    m = re.search(pattern, line)", replace="    m = re.match(pattern, line)"),
    dict(lab=L2, name="integer-elapsed-time",
         desc="expects the elapsed time as an integer, so no real line (12.34 ms) matches",
         find='iteration elapsed time: ([\\d.]+) ms")', replace='iteration elapsed time: (\\d+) ms")'),
    dict(lab=L2, name="context-by-chunk-size",
         desc="calls a one-token chunk generation and a bigger one context, instead of looking at the output count",
         find="""    ctx = [n for rid, n in scheduled.items() if num_output_tokens[rid] == 0]
    gen = [n for rid, n in scheduled.items() if num_output_tokens[rid] > 0]""",
         replace="""    ctx = [n for rid, n in scheduled.items() if n > 1]
    gen = [n for rid, n in scheduled.items() if n <= 1]"""),
    dict(lab=L2, name="requests-and-tokens-swapped",
         desc="puts the token sums where the request counts go",
         find="return IterationDetails(len(ctx), sum(ctx), len(gen), sum(gen))",
         replace="return IterationDetails(sum(ctx), len(ctx), sum(gen), len(gen))"),
    dict(lab=L2, name="commas-kept",
         desc="captures digits only, so '1,234,560 tokens' is read as 560",
         find='tokens = re.search(r"GPU KV cache size: ([\\d,]+) tokens", log)',
         replace='tokens = re.search(r"GPU KV cache size: \\S*?(\\d+) tokens", log)'),
    dict(lab=L2, name="concurrency-truncated",
         desc="reads the concurrency as an int, dropping its fraction",
         find="float(conc.group(2))", replace="float(int(float(conc.group(2))))"),
    dict(lab=L2, name="one-line-checked",
         desc="checks only the cache-size line is present, so a log with only the concurrency line crashes",
         find="    if tokens is None or conc is None:", replace="    if tokens is None:"),
    # --- lab-03: one engine step by hand ------------------------------------------------------
    dict(lab=L3, name="caught-up-with-prompt",
         desc="samples once computed + scheduled covers the prompt, so a recompute chunk after preemption samples too early",
         find="if r.num_computed_tokens + scheduler_output.num_scheduled_tokens[r.request_id] == r.num_tokens",
         replace="if r.num_computed_tokens + scheduler_output.num_scheduled_tokens[r.request_id] >= len(r.prompt_token_ids)"),
    dict(lab=L3, name="caught-up-at-least", equivalent=True,
         desc="EQUIVALENT: '>=' instead of '==': the scheduler never schedules past num_tokens, so the two agree",
         find="if r.num_computed_tokens + scheduler_output.num_scheduled_tokens[r.request_id] == r.num_tokens",
         replace="if r.num_computed_tokens + scheduler_output.num_scheduled_tokens[r.request_id] >= r.num_tokens"),
    dict(lab=L3, name="samples-every-row",
         desc="samples every scheduled request, mid-prefill chunks included",
         find="if r.num_computed_tokens + scheduler_output.num_scheduled_tokens[r.request_id] == r.num_tokens",
         replace="if True"),
    dict(lab=L3, name="position-one-past",
         desc="gives each row position num_tokens instead of num_tokens - 1",
         find="positions = np.array([r.num_tokens - 1 for r in rows], dtype=np.int64)",
         replace="positions = np.array([r.num_tokens for r in rows], dtype=np.int64)"),
    dict(lab=L3, name="last-prompt-token",
         desc="feeds the last prompt token instead of the last token, so decode steps repeat the prompt's end",
         find="last_tokens = np.array([r.all_token_ids[-1] for r in rows], dtype=np.int64)",
         replace="last_tokens = np.array([r.prompt_token_ids[-1] for r in rows], dtype=np.int64)"),
    dict(lab=L3, name="rows-after-update",
         desc="updates the scheduler before picking the rows, so the counters have already moved",
         find="""    scheduler_output = scheduler.schedule()
    rows = rows_to_sample(scheduler_output)
    sampled: dict[str, int] = {}
    if rows:
        logits = execute_model(model, rows)
        for request, row in zip(rows, logits):
            rid = request.request_id
            sampled[rid] = sampler.sample(row, request.sampling_params, generators[rid])
    finished = scheduler.update_from_output(scheduler_output, sampled)""",
         replace="""    scheduler_output = scheduler.schedule()
    finished = scheduler.update_from_output(scheduler_output, {})
    rows = rows_to_sample(scheduler_output)
    sampled: dict[str, int] = {}
    if rows:
        logits = execute_model(model, rows)
        for request, row in zip(rows, logits):
            rid = request.request_id
            sampled[rid] = sampler.sample(row, request.sampling_params, generators[rid])"""),
    dict(lab=L3, name="fresh-generator",
         desc="samples with a fresh generator from the params' seed instead of the request's own running generator",
         find="sampled[rid] = sampler.sample(row, request.sampling_params, generators[rid])",
         replace="sampled[rid] = sampler.sample(row, request.sampling_params, None)"),
    dict(lab=L3, name="update-only-when-sampled",
         desc="skips update_from_output when nothing was sampled, so a mid-prefill chunk never counts as computed",
         find="    finished = scheduler.update_from_output(scheduler_output, sampled)",
         replace="    finished = scheduler.update_from_output(scheduler_output, sampled) if sampled else []"),
    dict(lab=L3, name="generators-kept",
         desc="keeps finished requests' generators",
         find="""    for request in finished:
        generators.pop(request.request_id, None)
""", replace=""),
    # --- lab-04: watch the batch ----------------------------------------------------------------
    dict(lab=L4, name="live-dict",
         desc="records the scheduler's own num_scheduled_tokens dict instead of a copy",
         find="trace.append(dict(out.num_scheduled_tokens))", replace="trace.append(out.num_scheduled_tokens)"),
    dict(lab=L4, name="engine-kwargs-dropped",
         desc="builds the engine with its defaults, ignoring the caller's budget",
         find="engine = LLMEngine(**engine_kwargs)", replace="engine = LLMEngine()"),
    dict(lab=L4, name="max-tokens-default",
         desc="leaves max_tokens at the SamplingParams default instead of passing the caller's",
         find="params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)",
         replace="params = SamplingParams(temperature=0.0, ignore_eos=True)"),
    dict(lab=L4, name="count-before-classify",
         desc="adds this step's tokens before classifying, so the chunk that finishes a prompt is called decode",
         find="""            kinds.add("prefill" if done[rid] < prompt_lens[rid] else "decode")
            done[rid] += n""",
         replace="""            done[rid] += n
            kinds.add("prefill" if done[rid] < prompt_lens[rid] else "decode")"""),
    dict(lab=L4, name="prefill-through-prompt-length",
         desc="calls a chunk prefill while the tokens so far are <= the prompt, so the first decode is 'prefill'",
         find='kinds.add("prefill" if done[rid] < prompt_lens[rid] else "decode")',
         replace='kinds.add("prefill" if done[rid] <= prompt_lens[rid] else "decode")'),
    dict(lab=L4, name="idle-dropped",
         desc="skips empty steps instead of labelling them idle, so labels stop lining up with steps",
         find="""        labels.append("idle" if not kinds else kinds.pop() if len(kinds) == 1 else "mixed")""",
         replace="""        if kinds:
            labels.append(kinds.pop() if len(kinds) == 1 else "mixed")"""),
    dict(lab=L4, name="no-mixed",
         desc="labels a step by one of its kinds even when both are present",
         find='labels.append("idle" if not kinds else kinds.pop() if len(kinds) == 1 else "mixed")',
         replace='labels.append("idle" if not kinds else sorted(kinds)[0])'),
    # --- lab-05: stop conditions --------------------------------------------------------------
    dict(lab="lab-05-stop-conditions", name="length-before-eos",
         desc="checks the length cap before EOS, so an EOS on the last allowed token reports 'length'",
         find="""    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:
        request.status = RequestStatus.FINISHED_STOPPED
        return True""",
         replace="""    if request.num_output_tokens >= params.max_tokens:
        request.status = RequestStatus.FINISHED_LENGTH
        return True
    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:
        request.status = RequestStatus.FINISHED_STOPPED
        return True"""),
    dict(lab="lab-05-stop-conditions", name="ignore-eos-ignored",
         desc="stops on EOS even when ignore_eos is set",
         find="if not params.ignore_eos and request.eos_token_id",
         replace="if request.eos_token_id"),
    dict(lab="lab-05-stop-conditions", name="max-tokens-off-by-one",
         desc="stops one token late: '>' instead of '>=' against max_tokens",
         find="request.num_output_tokens >= params.max_tokens",
         replace="request.num_output_tokens > params.max_tokens"),
    dict(lab="lab-05-stop-conditions", name="no-stop-reason",
         desc="finishes on a stop token id without recording which one in stop_reason",
         find="        request.stop_reason = last\n",
         replace=""),
    dict(lab="lab-05-stop-conditions", name="model-len-ignored",
         desc="forgets the max_model_len cap",
         find="max_model_len is not None and request.num_tokens >= max_model_len",
         replace="False"),

    dict(lab=L5, name="stop-tokens-before-eos",
         desc="checks stop_token_ids before EOS, so an EOS that is also listed reports a stop_reason",
         find="""    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:
        request.status = RequestStatus.FINISHED_STOPPED
        return True
    if last in params.stop_token_ids:
        request.status = RequestStatus.FINISHED_STOPPED
        request.stop_reason = last
        return True""",
         replace="""    if last in params.stop_token_ids:
        request.status = RequestStatus.FINISHED_STOPPED
        request.stop_reason = last
        return True
    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:
        request.status = RequestStatus.FINISHED_STOPPED
        return True"""),
    dict(lab=L5, name="ignore-eos-skips-stop-tokens",
         desc="lets ignore_eos switch off the stop-token check too",
         find="    if last in params.stop_token_ids:",
         replace="    if not params.ignore_eos and last in params.stop_token_ids:"),
    dict(lab=L5, name="length-before-stop-tokens",
         desc="checks the length cap before stop tokens, so a stop token on the last allowed token reports 'length'",
         find="""    if last in params.stop_token_ids:
        request.status = RequestStatus.FINISHED_STOPPED
        request.stop_reason = last
        return True
    if request.num_output_tokens >= params.max_tokens or (""",
         replace="""    if request.num_output_tokens >= params.max_tokens:
        request.status = RequestStatus.FINISHED_LENGTH
        return True
    if last in params.stop_token_ids:
        request.status = RequestStatus.FINISHED_STOPPED
        request.stop_reason = last
        return True
    if request.num_output_tokens >= params.max_tokens or ("""),
    dict(lab=L5, name="model-len-off-by-one",
         desc="stops one token past max_model_len: '>' instead of '>='",
         find="request.num_tokens >= max_model_len", replace="request.num_tokens > max_model_len"),
    dict(lab=L5, name="model-len-counts-output-only",
         desc="compares the output length, not prompt + output, with max_model_len",
         find="request.num_tokens >= max_model_len", replace="request.num_output_tokens >= max_model_len"),
    dict(lab=L5, name="eos-none-compared",
         desc="treats a missing EOS id as \"stop on anything\" instead of \"no EOS check\"",
         find="request.eos_token_id is not None and last == request.eos_token_id",
         replace="(request.eos_token_id is None or last == request.eos_token_id)"),
    dict(lab=L5, name="dry-stream-left-waiting",
         desc="never marks the scripted request RUNNING, so a stream that runs dry reports WAITING",
         find="    request.status = RequestStatus.RUNNING\n    for token in token_stream:",
         replace="    for token in token_stream:"),
    dict(lab=L5, name="no-break-after-stop",
         desc="keeps appending after the check fires, so tokens follow the EOS",
         find="        if check_stop(request, max_model_len):\n            break",
         replace="        check_stop(request, max_model_len)"),
    dict(lab=L5, name="model-len-not-forwarded",
         desc="calls check_stop without max_model_len in the replay",
         find="        if check_stop(request, max_model_len):", replace="        if check_stop(request):"),
    dict(lab=L5, name="ignored-is-abort",
         desc="reports an ignored (too long) prompt as 'abort'",
         find='RequestStatus.FINISHED_IGNORED: "length",', replace='RequestStatus.FINISHED_IGNORED: "abort",'),
    dict(lab=L5, name="error-status-missing",
         desc="leaves FINISHED_ERROR out of the table, so an errored request reports no reason",
         find='        RequestStatus.FINISHED_ERROR: "error",\n', replace=""),
    dict(lab=L5, name="capped-without-prefix",
         desc="spells the length state 'LENGTH_CAPPED', without upstream's FINISHED_ prefix",
         find='return "FINISHED_LENGTH_CAPPED"', replace='return "LENGTH_CAPPED"'),
]
