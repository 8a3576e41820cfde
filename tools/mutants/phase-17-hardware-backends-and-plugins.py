"""Learner bugs for phase 17's labs (see tools/mutate_labs.py for the format)."""

L1 = "lab-01-platform-abstraction"
L2 = "lab-02-run-cpu-vllm"

MUTANTS = [
    # --- lab-01: platform abstraction -------------------------------------------------------
    dict(lab=L1, name="allow-list-falsy",
         desc="tests the allow-list for truthiness, so VLLM_PLUGINS='' loads every plugin instead of none",
         find="if allowed is not None and ep.name not in allowed:",
         replace="if allowed and ep.name not in allowed:"),
    dict(lab=L1, name="load-before-filter",
         desc="loads every plugin and filters afterwards, importing packages the allow-list excluded",
         find="""        if allowed is not None and ep.name not in allowed:
            continue
        try:
            plugins[ep.name] = ep.load()""",
         replace="""        try:
            loaded = ep.load()
            if allowed is not None and ep.name not in allowed:
                continue
            plugins[ep.name] = loaded"""),
    dict(lab=L1, name="broken-plugin-not-reported",
         desc="swallows a failing load() without recording it",
         find="            failed.append(ep.name)\n", replace=""),
    dict(lab=L1, name="activated-truthy",
         desc="treats any falsy answer (an empty string) as 'not activated' instead of only None",
         find="            if func() is not None:\n                names.append(name)",
         replace="            if func():\n                names.append(name)"),
    dict(lab=L1, name="crash-is-fatal",
         desc="lets a crashing hardware probe propagate instead of counting it as inactive",
         find="""        try:
            if func() is not None:
                names.append(name)
        except Exception:
            pass""",
         replace="""        if func() is not None:
            names.append(name)"""),
    dict(lab=L1, name="builtin-first",
         desc="lets an activated built-in win before looking at out-of-tree plugins",
         find="""    active_oot = activated(oot)
    if len(active_oot) >= 2:""",
         replace="""    if len(activated(builtin)) == 1:
        return builtin[activated(builtin)[0]]()
    active_oot = activated(oot)
    if len(active_oot) >= 2:"""),
    dict(lab=L1, name="first-of-many-wins",
         desc="takes the first of two activated out-of-tree plugins instead of refusing the ambiguity",
         find="""    if len(active_oot) >= 2:
        raise RuntimeError(f"Only one platform plugin can be activated, but got: {active_oot}")
    if len(active_oot) == 1:""",
         replace="""    if len(active_oot) >= 1:"""),
    dict(lab=L1, name="cpu-floor",
         desc="falls back to the CPU platform when nothing activates (the description's 'CPU floor')",
         find="    return UNSPECIFIED\n\n\ndef npu_paged_attention",
         replace='    return "mini_vllm.platforms.CpuPlatform"\n\n\ndef npu_paged_attention'),
    dict(lab=L1, name="hardcoded-module",
         desc="names the kernel under a fixed module name instead of this module's own name",
         find='return f"{__name__}.npu_paged_attention"',
         replace='return "solution.npu_paged_attention"'),
    dict(lab=L1, name="foreign-backend-raises",
         desc="raises on a foreign backend name instead of logging it and carrying on",
         find='            logger.info("Cannot use %s backend on NPU.", selected_backend)',
         replace='            raise ValueError(f"Cannot use {selected_backend} backend on NPU.")'),
    dict(lab=L1, name="round-down",
         desc="rounds the block size down to the tile instead of up",
         find="rounded = -(-block_size // NPU_BLOCK) * NPU_BLOCK",
         replace="rounded = max(block_size // NPU_BLOCK, 1) * NPU_BLOCK"),
    dict(lab=L1, name="always-32",
         desc="sets the block size to the tile itself instead of a multiple of it",
         find="rounded = -(-block_size // NPU_BLOCK) * NPU_BLOCK",
         replace="rounded = NPU_BLOCK"),
    dict(lab=L1, name="plugin-on-package-presence",
         desc="answers whenever the package is installed, without detecting a device",
         find='    if os.environ.get(NPU_ENV):\n        return f"{__name__}.NpuPlatform"\n    return None',
         replace='    return f"{__name__}.NpuPlatform"'),
    dict(lab=L1, name="empty-devices-count",
         desc="treats an empty NPU_VISIBLE_DEVICES as a visible device",
         find="    if os.environ.get(NPU_ENV):\n",
         replace="    if NPU_ENV in os.environ:\n"),
]

MUTANTS += [
    # --- lab-02: run CPU vLLM ---------------------------------------------------------------
    dict(lab=L2, name="platform-plugin-line-only",
         desc="reads the platform only from the built-in detection line, missing an activated plugin",
         find=r'"platform": r"Automatically detected platform (\w+)\.|Platform plugin (\w+) is activated",',
         replace=r'"platform": r"Automatically detected platform (\w+)\.",'),
    dict(lab=L2, name="dtype-unanchored",
         desc="matches dtype= anywhere, so kv_cache_dtype=auto can answer first",
         find=r'"dtype": r"\bdtype=torch\.(\w+)",',
         replace=r'"dtype": r"dtype=(?:torch\.)?(\w+)",'),
    dict(lab=L2, name="kv-tokens-string",
         desc="returns the KV-cache size as the printed string with its thousands separators",
         find='''        if key == "kv_cache_tokens" and value is not None:
            value = int(value.replace(",", ""))
''', replace=""),
    dict(lab=L2, name="cpu-layout-line-only",
         desc="reads the backend only from the CPU layout line, so CUDA logs give None",
         find=r'"attention_backend": r"Using (\w+) attention backend|KV cache layout for (\w+) backend|Using AttentionBackendEnum\.(\w+) backend",',
         replace=r'"attention_backend": r"KV cache layout for (\w+) backend",'),
    dict(lab=L2, name="walk-whole-tree",
         desc="counts every def under the class, nested classes included",
         find="    for node in _class_node(source, class_name).body:\n        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):\n            counts[\"methods\"] += 1",
         replace="    for node in ast.walk(_class_node(source, class_name)):\n        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):\n            counts[\"methods\"] += 1"),
    dict(lab=L2, name="annotations-not-attributes",
         desc="counts only plain assignments as attributes, missing annotated names like _enum",
         find="        elif isinstance(node, (ast.Assign, ast.AnnAssign)):\n            counts[\"attributes\"] += 1",
         replace="        elif isinstance(node, ast.Assign):\n            counts[\"attributes\"] += 1"),
    dict(lab=L2, name="overrides-methods-only",
         desc="compares only methods, so overridden class attributes (device_name, dist_backend) are missed",
         find="    base_names = set(_defined_names(_class_node(base_source, base)))\n    own = set(_defined_names(_class_node(sub_source, sub)))",
         replace="    base_names = {n.name for n in _class_node(base_source, base).body if isinstance(n, ast.FunctionDef)}\n    own = {n.name for n in _class_node(sub_source, sub).body if isinstance(n, ast.FunctionDef)}"),
    dict(lab=L2, name="block-16-default",
         desc="keeps the GPU default block size of 16 instead of the CPU platform's 128",
         find="block_size = CPU_DEFAULT_BLOCK_SIZE if user_block_size is None else user_block_size",
         replace="block_size = 16 if user_block_size is None else user_block_size"),
    dict(lab=L2, name="user-block-ignored",
         desc="always sets 128, overriding a block size the user chose",
         find="block_size = CPU_DEFAULT_BLOCK_SIZE if user_block_size is None else user_block_size",
         replace="block_size = CPU_DEFAULT_BLOCK_SIZE"),
    dict(lab=L2, name="kvcache-decimal-gb",
         desc="reads VLLM_CPU_KVCACHE_SPACE as decimal gigabytes instead of GiB",
         find="kv_bytes = int(space) * GIB if space != \"\" else None",
         replace="kv_bytes = int(space) * 10**9 if space != \"\" else None"),
    dict(lab=L2, name="probe-average",
         desc="averages the timed runs instead of keeping the fastest",
         find="""    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.dot(x, x)
        best = min(best, time.perf_counter() - start)
    return x.nbytes / best""",
         replace="""    total = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        np.dot(x, x)
        total += time.perf_counter() - start
    return x.nbytes / (total / repeats)"""),
    dict(lab=L2, name="no-warmup",
         desc="times the first, page-faulting read too",
         find="    x = np.ones(nbytes // 4, dtype=np.float32)\n    np.dot(x, x)\n",
         replace="    x = np.ones(nbytes // 4, dtype=np.float32)\n"),
    dict(lab=L2, name="ceiling-ignores-dtype",
         desc="prices every weight at 2 bytes whatever the dtype",
         find="return bandwidth / decode_bytes_per_token(config, dtype_bytes)",
         replace="return bandwidth / decode_bytes_per_token(config)"),
]
