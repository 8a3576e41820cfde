"""Lab 01-02 spec: the mini step and vLLM's EngineCore.step, stage for stage and log line for log line.

The CPU tests check the stage probe, the mapping to upstream's core.py and the log
parsers. The GPU test runs real vLLM 0.22.1 on a tiny local model and checks that its
per-step log lines equal what the mini engine predicts.
"""
import pytest

from mini_vllm import EngineConfig, EngineCore, Request, SamplingParams
from course.labkit import REPO_ROOT

GREEDY = SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True)


def core_with(prompts, **config):
    core = EngineCore(EngineConfig.create(**config))
    for i, p in enumerate(prompts):
        core.add_request(Request(f"r{i}", list(p.encode()), GREEDY, eos_token_id=256))
    return core


def test_probe_sees_all_four_stages_when_requests_sample(lab):
    core = core_with(["hello", "hi"])
    assert lab.probe_stages(core) == ["schedule", "execute_model", "sample", "sample", "update_from_output"], (
        "one sample call per request that caught up this step"
    )


def test_probe_mid_prefill_step_has_no_sample(lab):
    core = core_with(["abcdefghij"], long_prefill_token_threshold=4)
    assert lab.probe_stages(core) == ["schedule", "execute_model", "update_from_output"], (
        "4 of 10 prompt tokens: the model runs, nothing is sampled"
    )


def test_probe_idle_step(lab):
    assert lab.probe_stages(EngineCore(EngineConfig.create())) == ["schedule", "update_from_output"]


def test_probe_leaves_the_engine_as_it_found_it(lab):
    probed, plain = core_with(["hello", "hi"]), core_with(["hello", "hi"])
    lab.probe_stages(probed)
    plain.step()
    assert "schedule" not in vars(probed.scheduler) and "update_from_output" not in vars(probed.scheduler)
    assert "execute_model" not in vars(probed) and "sample" not in vars(probed.sampler), "remove your wrappers"
    while plain.has_unfinished_requests():
        assert probed.step().sampled == plain.step().sampled, "the probe must not change what the engine does"


def test_upstream_lines_of_engine_core_step(lab):
    lines = {s: lab.upstream_line(s) for s in ("schedule", "execute_model", "sample", "update_from_output")}
    assert lines == {"schedule": 439, "execute_model": 440, "sample": 448, "update_from_output": 453}
    core_py = REPO_ROOT / "upstream" / "vllm" / "v1" / "engine" / "core.py"
    if core_py.exists():  # with the pinned source present, check the lines say what we claim
        text = core_py.read_text().splitlines()
        assert "self.scheduler.schedule()" in text[439 - 1]
        assert "self.model_executor.execute_model(" in text[440 - 1]
        assert "self.model_executor.sample_tokens(" in text[448 - 1]
        assert "self.scheduler.update_from_output(" in text[453 - 1]


def test_upstream_line_rejects_an_unknown_stage(lab):
    with pytest.raises(ValueError):
        lab.upstream_line("detokenize")


def test_probe_restores_the_engine_even_when_the_step_raises(lab):
    core = core_with(["hello"])

    def broken_sample(*args, **kwargs):
        raise RuntimeError("sampler exploded")

    core.sampler.sample = broken_sample  # an instance attribute that was there before the probe
    with pytest.raises(RuntimeError, match="sampler exploded"):
        lab.probe_stages(core)
    assert "schedule" not in vars(core.scheduler) and "update_from_output" not in vars(core.scheduler), (
        "README task 1: remove your wrappers in a finally block, so a failing step leaves no probe behind"
    )
    assert "execute_model" not in vars(core)
    assert vars(core.sampler).get("sample") is broken_sample, "put back what was there before, not the class's method"


# The exact text upstream joins together in EngineCore.log_iteration_details, behind
# vLLM's default log prefix.
REAL_LINE = ("INFO 05-14 10:02:07 [core.py:401] Iteration(3): 1 context requests, 6 context tokens, "
             "2 generation requests, 2 generation tokens, iteration elapsed time: 12.34 ms")


def test_parse_iteration_line(lab):
    index, details = lab.parse_iteration_line(REAL_LINE)
    assert index == 3 and tuple(details) == (1, 6, 2, 2)


def test_parse_iteration_line_with_multi_digit_numbers(lab):
    line = ("INFO 05-14 10:02:07 [core.py:401] Iteration(1234): 0 context requests, 0 context tokens, "
            "256 generation requests, 256 generation tokens, iteration elapsed time: 105.03 ms")
    assert lab.parse_iteration_line(line) == (1234, (0, 0, 256, 256)), "README task 3: every number can have many digits"


def test_parse_iteration_line_ignores_other_lines(lab):
    assert lab.parse_iteration_line("INFO 05-14 10:02:01 [kv_cache_utils.py:1733] GPU KV cache size: 1,234 tokens") is None
    assert lab.parse_iteration_line("") is None


def test_a_one_token_prefill_chunk_is_still_context(lab):
    got = lab.iteration_details({"a": 1, "b": 1, "c": 2}, {"a": 0, "b": 3, "c": 0})
    assert tuple(got) == (2, 3, 1, 1), (
        "README task 4: a is a 1-token prefill chunk with no output yet (context); the chunk size decides nothing"
    )
    assert tuple(lab.iteration_details({}, {})) == (0, 0, 0, 0), "an idle step"


def test_iteration_details_splits_by_output_count(lab):
    got = lab.iteration_details({"a": 8, "b": 1, "c": 3}, {"a": 0, "b": 5, "c": 0})
    assert tuple(got) == (2, 11, 1, 1), "a and c have no output yet (context), b does (generation)"


def test_mini_iteration_log_single_request(lab):
    log = lab.mini_iteration_log([6], max_tokens=4)
    assert [tuple(d) for d in log] == [(1, 6, 0, 0), (0, 0, 1, 1), (0, 0, 1, 1), (0, 0, 1, 1)]


def test_mini_iteration_log_under_a_tight_budget(lab):
    log = lab.mini_iteration_log([10, 3], max_tokens=3, max_num_batched_tokens=8)
    assert [tuple(d) for d in log] == [(1, 8, 0, 0), (2, 5, 0, 0), (0, 0, 2, 2), (0, 0, 2, 2)], (
        "a second prefill chunk is still 'context': the request has no output token yet"
    )


def startup_log(tokens: int, max_model_len: int, concurrency: float) -> str:
    """The two lines as vllm/v1/core/kv_cache_utils.py formats them."""
    return ("INFO [kv_cache_utils.py:1733] GPU KV cache size: %s tokens\n" % f"{tokens:,}"
            + "INFO [kv_cache_utils.py:1734] Maximum concurrency for %s tokens per request: %.2fx\n"
            % (f"{max_model_len:,}", concurrency))


def test_parse_kv_cache_report(lab):
    report = lab.parse_kv_cache_report("noise\n" + startup_log(1_234_560, 2_048, 602.81) + "more noise")
    assert tuple(report) == (1_234_560, 2_048, 602.81)


def test_parse_kv_cache_report_needs_both_lines(lab):
    with pytest.raises(ValueError):
        lab.parse_kv_cache_report("INFO GPU KV cache size: 10 tokens")
    with pytest.raises(ValueError):
        lab.parse_kv_cache_report("INFO Maximum concurrency for 2,048 tokens per request: 1.50x")
    with pytest.raises(ValueError):
        lab.parse_kv_cache_report("")


def test_parse_kv_cache_report_small_numbers_without_separators(lab):
    assert tuple(lab.parse_kv_cache_report(startup_log(512, 256, 2.0))) == (512, 256, 2.0)


PROMPTS = ["the quick brown fox jumps over the lazy dog", "paged attention stores the kv cache"]
MAX_TOKENS = 8


@pytest.mark.gpu
def test_real_vllm_logs_the_steps_mini_predicts(lab, gpu_device, tiny_llama_dir, figures):
    from transformers import AutoTokenizer

    from course.gpu_fixtures import run_vllm

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    prompt_lens = [len(tokenizer(p).input_ids) for p in PROMPTS]
    run = run_vllm(
        tiny_llama_dir, PROMPTS,
        llm_kwargs=dict(gpu_memory_utilization=0.3, max_model_len=256, enforce_eager=True,
                        async_scheduling=False, enable_logging_iteration_details=True),
        sampling=dict(max_tokens=MAX_TOKENS, temperature=0.0, ignore_eos=True),
        metrics=True,
    )
    parsed = [p for p in map(lab.parse_iteration_line, run.log.splitlines()) if p is not None]
    assert [i for i, _ in parsed] == list(range(len(parsed))), "one Iteration(i) line per EngineCore.step"
    real = [d for _, d in parsed if d.num_context_tokens + d.num_generation_tokens > 0]
    assert real == lab.mini_iteration_log(prompt_lens, max_tokens=MAX_TOKENS), (
        f"vLLM's steps differ from mini_vllm's prediction:\n{real}"
    )
    report = lab.parse_kv_cache_report(run.log)
    assert report.max_model_len == 256
    assert abs(report.kv_cache_tokens / 256 - report.max_concurrency) < 0.01, "tokens = int(concurrency x max_model_len)"
    metrics = run.extra["metrics"]
    assert metrics["vllm:prompt_tokens"] == sum(prompt_lens)
    assert metrics["vllm:generation_tokens"] == MAX_TOKENS * len(PROMPTS)
    assert [o["finish_reason"] for o in run.outputs] == ["length"] * len(PROMPTS)
    figures("p01_lab02_prompt_lens", prompt_lens)
    figures("p01_lab02_iterations", [list(d) for d in real])
    figures("p01_lab02_kv_cache_tokens", report.kv_cache_tokens)
    figures("p01_lab02_max_concurrency_256", report.max_concurrency)
    figures("p01_lab02_startup_s", round(run.startup_s, 1))
    keep = ("Iteration(", "GPU KV cache size", "Maximum concurrency", "Asynchronous scheduling")
    figures("p01_lab02_log_lines", [line for line in run.log.splitlines() if any(k in line for k in keep)])
