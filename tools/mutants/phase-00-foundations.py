"""Learner bugs for phase 00's labs (see tools/mutate_labs.py for the format)."""

L1 = "lab-01-kv-cache-speedup"

MUTANTS = [
    # --- lab-01: generation with and without a KV cache -----------------------------------
    dict(lab=L1, name="positions-from-one",
         desc="numbers the uncached positions 1..len instead of 0..len-1: same work, shifted rows",
         find="keys, values = compute_kv(tokens, range(len(tokens)), work)\n        tokens.append",
         replace="keys, values = compute_kv(tokens, range(1, len(tokens) + 1), work)\n        tokens.append"),
    dict(lab=L1, name="new-row-at-length",
         desc="computes the new token's K/V at position len(tokens) after appending it (one past its index)",
         find="k, v = compute_kv([tok], [len(tokens) - 1], work)",
         replace="k, v = compute_kv([tok], [len(tokens)], work)"),
    dict(lab=L1, name="prefill-not-counted",
         desc="runs the prefill on a throwaway counter, as if the prompt's K/V were free",
         find="    keys, values = compute_kv(tokens, range(len(tokens)), work)\n    for _ in range(n_new):\n        tok",
         replace="    keys, values = compute_kv(tokens, range(len(tokens)), KVWork())\n    for _ in range(n_new):\n        tok"),
    dict(lab=L1, name="fresh-counter-per-step",
         desc="makes a new KVWork inside the loop, so only the last step's work is returned",
         find="    for _ in range(n_new):\n        keys, values = compute_kv(tokens, range(len(tokens)), work)",
         replace="    for _ in range(n_new):\n        work = KVWork()\n        keys, values = compute_kv(tokens, range(len(tokens)), work)"),
    dict(lab=L1, name="keys-stacked-on-top",
         desc="puts the new key row on top of the cache but the value row at the bottom (rows misaligned)",
         find="keys, values = np.vstack([keys, k]), np.vstack([values, v])",
         replace="keys, values = np.vstack([k, keys]), np.vstack([values, v])"),
    dict(lab=L1, name="both-rows-on-top", equivalent=True,
         desc="EQUIVALENT: new K and V rows both go on top; attention is a weighted sum over rows, so "
              "the same permutation of keys and values gives the same output and the same work",
         find="keys, values = np.vstack([keys, k]), np.vstack([values, v])",
         replace="keys, values = np.vstack([k, keys]), np.vstack([v, values])"),
    dict(lab=L1, name="returns-only-new-tokens",
         desc="returns just the generated tokens from the cached generator, without the prompt",
         find="        keys, values = np.vstack([keys, k]), np.vstack([values, v])\n    return tokens, work.units",
         replace="        keys, values = np.vstack([keys, k]), np.vstack([values, v])\n    return tokens[len(prompt):], work.units"),
    dict(lab=L1, name="one-step-short",
         desc="generates n_new - 1 tokens without the cache (an off-by-one loop bound)",
         find="    for _ in range(n_new):\n        keys, values",
         replace="    for _ in range(max(n_new - 1, 0)):\n        keys, values"),
]
