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
