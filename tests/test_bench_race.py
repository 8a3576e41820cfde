"""tools/bench_race.py's pieces that need no engine: seeded workloads, token agreement,
the vLLM environment and the printed table. No torch, no vLLM, no checkpoint."""
from __future__ import annotations

import subprocess
import sys

import pytest

from course.labkit import REPO_ROOT, load_module_from_path

race = load_module_from_path(REPO_ROOT / "tools" / "bench_race.py")


def test_workloads_are_a_function_of_seed_and_size():
    assert race.make_workload(8, seed=0) == race.make_workload(8, seed=0)
    assert race.make_workload(8, seed=0) != race.make_workload(8, seed=1)
    assert race.make_workload(8, seed=0) != race.make_workload(8, seed=0)[:1] + race.make_workload(7, seed=0)


def test_workload_lengths_stay_in_the_advertised_ranges():
    requests = race.make_workload(32, seed=3)
    words = [len(r["prompt"].split()) for r in requests]
    outputs = [r["max_tokens"] for r in requests]
    assert len(requests) == 32
    assert min(words) >= 8 and max(words) <= 120, words
    assert min(outputs) >= 16 and max(outputs) <= 96, outputs
    assert len(set(outputs)) > 10, "output lengths must be mixed, not one value"
    assert all(r["prompt"][0].isupper() and r["prompt"].endswith(".") for r in requests)


def test_workload_is_pinned_for_seed_zero():
    """The appendix's numbers were measured on these exact requests."""
    first = race.make_workload(1, seed=0)[0]
    assert (len(first["prompt"].split()), first["max_tokens"]) == (FIRST_WORDS, FIRST_MAX_TOKENS)
    assert sum(r["max_tokens"] for r in race.make_workload(8, seed=0)) == TOKENS_8
    assert sum(r["max_tokens"] for r in race.make_workload(32, seed=0)) == TOKENS_32


FIRST_WORDS, FIRST_MAX_TOKENS, TOKENS_8, TOKENS_32 = 9, 41, 423, 1797


def test_first_divergence_finds_the_first_differing_token():
    assert race.first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert race.first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert race.first_divergence([1, 2, 3], [9, 9, 9]) == 0
    assert race.first_divergence([1, 2], [1, 2, 3]) == 2, "a shorter output diverges where it stops"


def test_agreement_counts_matching_requests_and_the_earliest_divergence():
    ref = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]]
    other = [[1, 2, 3, 4], [5, 6, 0, 0], [9, 9, 9, 1]]
    a = race.agreement(ref, other)
    assert a == {"matching": 1, "requests": 3, "first_divergence": 2, "divergences": [None, 2, 3]}
    assert race.describe_agreement(a) == "1/3, first diff @2"
    assert race.describe_agreement(race.agreement(ref, ref)) == "3/3"
    with pytest.raises(ValueError, match="3 reference requests vs 2"):
        race.agreement(ref, other[:2])


def test_summary_takes_medians_over_runs():
    runs = [{"seconds": 2.0, "tokens": 100, "ttft": [0.1, 0.3, 0.2]},
            {"seconds": 1.0, "tokens": 100, "ttft": [0.5, 0.4, 0.6]},
            {"seconds": 4.0, "tokens": 100, "ttft": [0.1, 0.1, 0.1]}]
    s = race.summarize(runs)
    assert s["tok_s"] == 50.0 and s["runs"] == 3
    assert s["ttft_ms"] == pytest.approx(200.0), "median over runs of each run's median TTFT"


def fake_results():
    def engine(tok_s, tokens):
        return {"versions": {}, "load_s": 1.0,
                "sizes": {"2": {"runs": [{"seconds": 6 / tok_s, "tokens": 6, "ttft": [0.05, 0.15]}], "tokens": tokens}}}

    engines = {"mini": engine(30.0, [[1, 2, 3], [4, 5, 6]]), "vllm": engine(60.0, [[1, 2, 3], [4, 5, 7]]),
               "hf": engine(20.0, [[1, 2, 3], [4, 5, 6]])}
    return {"sizes": [2], "workloads": {"2": [{"prompt_tokens": 9, "max_tokens": 3}, {"prompt_tokens": 4, "max_tokens": 3}]},
            "engines": engines, "agreement": race.compare_tokens(engines, [2])}


def test_table_has_one_column_per_engine_and_agreement_rows():
    lines = race.format_table(fake_results()).splitlines()
    assert lines[0].split() == ["mini_vllm", "vLLM", "(CPU)", "transformers"]
    assert lines[1] == "2 requests, 6 output tokens"
    assert lines[2].split() == ["tokens/s", "30.0", "60.0", "20.0"]
    assert lines[3].split()[-3:] == ["30.0..30.0", "60.0..60.0", "20.0..20.0"]
    del lines[3]
    assert lines[3].split() == ["time", "to", "first", "token,", "median", "ms", "100", "100", "100"]
    cells = lambda line: [c.strip() for c in (line[34 + 24 * i: 34 + 24 * (i + 1)] for i in range(3))]  # noqa: E731
    assert lines[4].startswith("  same tokens as transformers")
    assert cells(lines[4]) == ["2/2", "1/2, first diff @2", "reference"]
    assert lines[5].startswith("  same tokens as vLLM (CPU)")
    assert cells(lines[5]) == ["1/2, first diff @2", "reference", "-"]
    assert len(lines) == 6


def test_table_with_one_engine_has_no_agreement_rows():
    results = fake_results()
    results["engines"] = {"mini": results["engines"]["mini"]}
    results["agreement"] = race.compare_tokens(results["engines"], [2])
    assert [line.split()[0] for line in race.format_table(results).splitlines()] == ["mini_vllm", "2", "tokens/s", "tokens/s,", "time"]


def test_vllm_gets_both_cores_and_the_preloads_its_guide_asks_for(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libiomp5.so").write_bytes(b"")
    env = race.vllm_env(str(tmp_path / "bin" / "python"), threads=2)
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["LD_PRELOAD"].split(":")[-1] == str(tmp_path / "lib" / "libiomp5.so")
    bare = race.vllm_env(str(tmp_path / "elsewhere" / "bin" / "python"), threads=2)
    assert str(tmp_path) not in bare.get("LD_PRELOAD", ""), "a library that is not there is not preloaded"


def test_importing_the_race_script_imports_no_engine():
    code = ("import importlib.util, sys; "
            "spec = importlib.util.spec_from_file_location('bench_race', 'tools/bench_race.py'); "
            "spec.loader.exec_module(importlib.util.module_from_spec(spec)); "
            "print(sorted(m for m in ('torch', 'vllm', 'transformers', 'mini_vllm', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_avx512_cpus_get_openblas_avx512_kernels():
    assert race.openblas_env("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n") == {"OPENBLAS_CORETYPE": "SkylakeX"}
    assert race.openblas_env("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n") == {}
    assert race.openblas_env("") == {}
