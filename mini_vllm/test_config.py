"""Spec of mini_vllm.config: composed configs, validation at the boundary, and the two
seams (scheduler class, block-pool class) a learner's lab file plugs into."""

import numpy as np
import pytest

from mini_vllm import LLM, BlockPool, EngineCore, SamplingParams, Scheduler
from mini_vllm.config import (BLOCK_POOL_CLS_ENV, SCHEDULER_CLS_ENV, CacheConfig, EngineConfig, ModelConfig,
                              SchedulerConfig)

GREEDY = SamplingParams(temperature=0.0, max_tokens=6, ignore_eos=True)


def test_flat_arguments_land_in_their_config():
    cfg = EngineConfig.create(block_size=4, num_blocks=64, max_num_seqs=2, max_model_len=32, seed=3)
    assert cfg.cache_config == CacheConfig(block_size=4, num_blocks=64)
    assert cfg.scheduler_config == SchedulerConfig(max_num_seqs=2, max_model_len=32)
    assert (cfg.block_size, cfg.max_model_len, cfg.seed) == (4, 32, 3)


def test_unknown_argument_lists_the_known_ones():
    with pytest.raises(TypeError, match="unknown engine argument 'blocksize'.*block_size"):
        EngineConfig.create(blocksize=4)


def test_config_and_its_fields_together_are_refused():
    with pytest.raises(TypeError, match="not both"):
        EngineConfig.create(cache_config=CacheConfig(), block_size=4)


@pytest.mark.parametrize("kwargs, field", [
    (dict(block_size=True), "block_size"),
    (dict(block_size=4.0), "block_size"),
    (dict(num_blocks="64"), "num_blocks"),
    (dict(enable_prefix_caching="no"), "enable_prefix_caching"),
    (dict(enable_chunked_prefill=1), "enable_chunked_prefill"),
    (dict(seed="abc"), "seed"),
    (dict(seed=-1), "seed"),
    (dict(max_num_seqs=0), "max_num_seqs"),
    (dict(long_prefill_token_threshold=-1), "long_prefill_token_threshold"),
    (dict(model="nope"), "model"),
])
def test_bad_values_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        EngineConfig.create(**kwargs)


def test_numpy_ints_are_accepted_everywhere_as_plain_ints():
    cfg = EngineConfig.create(block_size=np.int64(4), num_blocks=np.int32(64), max_model_len=np.int64(32),
                              seed=np.int64(0))
    assert type(cfg.block_size) is int and type(cfg.num_blocks) is int and type(cfg.seed) is int
    assert type(ModelConfig(hidden_size=np.int64(32)).hidden_size) is int


def test_seed_zero_forms_are_one_seed():
    outs = [LLM(seed=s).generate(["hi"], SamplingParams(temperature=1.0, max_tokens=4))[0].output_token_ids
            for s in (0, np.int64(0))]
    assert outs[0] == outs[1]


class CountingScheduler(Scheduler):
    steps = 0

    def schedule(self):
        type(self).steps += 1
        return super().schedule()


class CountingPool(BlockPool):
    allocations = 0

    def get_new_blocks(self, num_blocks):
        type(self).allocations += 1
        return super().get_new_blocks(num_blocks)


def test_the_engine_builds_the_scheduler_and_block_pool_it_is_given():
    CountingScheduler.steps = CountingPool.allocations = 0
    plain = LLM(block_size=4).generate(["hello"], GREEDY)[0]
    llm = LLM(block_size=4, scheduler_cls=CountingScheduler, block_pool_cls=CountingPool)
    out = llm.generate(["hello"], GREEDY)[0]
    core = llm.llm_engine.engine_core
    assert type(core.scheduler) is CountingScheduler and type(core.kv_cache_manager.block_pool) is CountingPool
    assert CountingScheduler.steps == 6 and CountingPool.allocations >= 2
    assert out.output_token_ids == plain.output_token_ids


def test_a_class_can_be_named_by_module_path_or_by_file(tmp_path):
    assert SchedulerConfig(scheduler_cls="mini_vllm.scheduler.Scheduler").get_scheduler_cls() is Scheduler
    lab = tmp_path / "solution.py"
    lab.write_text("from mini_vllm import Scheduler as _S, BlockPool as _B\n"
                   "class Scheduler(_S):\n    pass\nclass BlockPool(_B):\n    pass\nclass Other(_S):\n    pass\n")
    assert SchedulerConfig(scheduler_cls=str(lab)).get_scheduler_cls().__name__ == "Scheduler"
    assert SchedulerConfig(scheduler_cls=f"{lab}:Other").get_scheduler_cls().__name__ == "Other"
    assert CacheConfig(block_pool_cls=str(lab)).get_block_pool_cls().__name__ == "BlockPool"
    with pytest.raises(ValueError, match="has no class 'Missing'"):
        SchedulerConfig(scheduler_cls=f"{lab}:Missing").get_scheduler_cls()
    with pytest.raises(ValueError, match="cannot import"):
        SchedulerConfig(scheduler_cls="no_such_pkg.Scheduler").get_scheduler_cls()


def test_environment_variables_point_a_whole_suite_at_a_lab_file(tmp_path, monkeypatch):
    lab = tmp_path / "mine.py"
    lab.write_text("from mini_vllm import Scheduler as _S, BlockPool as _B\n"
                   "class Scheduler(_S):\n    mine = True\nclass BlockPool(_B):\n    mine = True\n")
    monkeypatch.setenv(SCHEDULER_CLS_ENV, str(lab))
    monkeypatch.setenv(BLOCK_POOL_CLS_ENV, str(lab))
    core = EngineCore(block_size=4)
    assert getattr(core.scheduler, "mine", False) and getattr(core.kv_cache_manager.block_pool, "mine", False)
