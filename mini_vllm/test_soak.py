"""Soak: 10,000 requests through one engine; memory must stay flat (issue: LLMEngine kept
every finished output, prompt and step's stats forever, ~1 KB per request)."""

import gc
import tracemalloc

import pytest

from mini_vllm import EngineCore, LLMEngine, Request, SamplingParams

PARAMS = SamplingParams(temperature=0.0, max_tokens=2, ignore_eos=True)
TOTAL, WARMUP, BATCH = 10_000, 2_000, 100
MAX_GROWTH_BYTES = 256 * 1024  # after warm-up; a leak of 1 KB per request would be ~8 MB


def _grow(run_batch) -> int:
    """Bytes still allocated after TOTAL requests, minus what was allocated after WARMUP."""
    tracemalloc.start()
    try:
        done, base = 0, None
        while done < TOTAL:
            run_batch(done)
            done += BATCH
            if done == WARMUP:
                gc.collect()
                base = tracemalloc.get_traced_memory()[0]
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_llm_engine_memory_is_flat_over_ten_thousand_requests():
    engine = LLMEngine(model="toy", block_size=4, num_blocks=256, max_model_len=64, max_num_seqs=64,
                       history_size=64)  # bounded history fills during the warm-up
    growth = _grow(lambda start: engine.generate([f"req {start + i}" for i in range(BATCH)], PARAMS))
    assert growth < MAX_GROWTH_BYTES, f"LLMEngine grew by {growth} bytes over {TOTAL - WARMUP} requests"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_engine_core_memory_is_flat_over_ten_thousand_requests():
    core = EngineCore(model="toy", block_size=4, num_blocks=256, max_model_len=64, max_num_seqs=64)

    def batch(start):
        for i in range(BATCH):
            core.add_request(Request(str(start + i), [1 + i % 50, 2, 3], PARAMS))
        while core.has_unfinished_requests():
            core.step()

    growth = _grow(batch)
    assert growth < MAX_GROWTH_BYTES, f"EngineCore grew by {growth} bytes over {TOTAL - WARMUP} requests"
