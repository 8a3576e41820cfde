"""Learner bugs for phase 07's labs (see tools/mutate_labs.py for the format)."""

L1 = "lab-01-moe-routing"
L2 = "lab-02-profile-fused-moe"
L3 = "lab-03-tiled-gemm"
L4 = "lab-04-expert-load-balance"

MUTANTS = [
    # ------------------------------------------------------------------ lab-03
    dict(lab=L3, name="edges-not-clipped",
         desc="takes start + tile as the row tile's end without clipping it to M",
         find="        m1 = min(m0 + tile_m, M)\n",
         replace="        m1 = m0 + tile_m\n"),
    dict(lab=L3, name="ragged-k-dropped",
         desc="loops over whole K slices only and drops the partial last one",
         find="            for k0 in range(0, K, tile_k):",
         replace="            for k0 in range(0, K - tile_k + 1, tile_k):"),
    dict(lab=L3, name="k-slices-overwrite",
         desc="assigns each K slice's product to the accumulator instead of adding it",
         find="                acc += a[m0:m1, k0:k1] @ b[k0:k1, n0:n1]",
         replace="                acc = a[m0:m1, k0:k1] @ b[k0:k1, n0:n1]"),
    dict(lab=L3, name="naive-one-operand",
         desc="counts only the loads of A in the untiled loop",
         find="    return 2 * M * N * K",
         replace="    return M * N * K"),
    dict(lab=L3, name="tile-sides-swapped",
         desc="reads A once per tile row and B once per tile column (tile sides swapped)",
         find="return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)",
         replace="return M * K * math.ceil(M / tile_m) + K * N * math.ceil(N / tile_n)"),
    dict(lab=L3, name="tile-args-swapped",
         desc="divides N by tile_m and M by tile_n",
         find="return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)",
         replace="return M * K * math.ceil(N / tile_m) + K * N * math.ceil(M / tile_n)"),
    dict(lab=L3, name="floor-tiles",
         desc="counts tiles with floor division, so a partial edge tile is free",
         find="return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)",
         replace="return M * K * (N // tile_n) + K * N * (M // tile_m)"),
    dict(lab=L3, name="round-tiles",
         desc="rounds the tile count to nearest instead of up",
         find="return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)",
         replace="return M * K * round(N / tile_n) + K * N * round(M / tile_m)"),
    dict(lab=L3, name="ceil-plus-one",
         desc="counts tiles as floor + 1, charging an extra tile when the size divides evenly",
         find="return M * K * math.ceil(N / tile_n) + K * N * math.ceil(M / tile_m)",
         replace="return M * K * (N // tile_n + 1) + K * N * (M // tile_m + 1)"),
    dict(lab=L3, name="reuse-inverted",
         desc="divides tiled loads by naive loads",
         find="return naive_traffic(M, N, K) / tiled_traffic(M, N, K, tile_m, tile_n)",
         replace="return tiled_traffic(M, N, K, tile_m, tile_n) / naive_traffic(M, N, K)"),
]
