"""The platform layer: upstream's resolution rules, plugin loading, and an out-of-tree
platform changing the engine's decisions without an edit to the engine."""

from __future__ import annotations

import logging
import textwrap
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from mini_vllm import platforms
from mini_vllm.engine import LLM, EngineCore
from mini_vllm.sampler import SamplingParams

GROUP = platforms.PLATFORM_PLUGINS_GROUP


@pytest.fixture(autouse=True)
def fresh_platform(monkeypatch):
    monkeypatch.delenv(platforms.PLUGINS_ENV, raising=False)
    platforms.clear_injected_entry_points()
    platforms.reset_current_platform()
    yield
    platforms.clear_injected_entry_points()
    platforms.reset_current_platform()


def answers(value):
    return lambda: value


def raises():
    raise RuntimeError("driver probe crashed")


class FakeEntryPoint:
    def __init__(self, name, obj, group=GROUP):
        self.name, self.value, self.group, self._obj = name, f"fake:{name}", group, obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


VENDOR_PACKAGE = '''
"""A hardware vendor's package, as it would ship on PyPI."""
from dataclasses import replace

import numpy as np

from mini_vllm import attention
from mini_vllm.platforms import Platform, PlatformEnum

CALLS = []


def vendor_paged_attention(q, kv_cache_layer, block_table, seq_len, start_pos, scale=None):
    """Flash-decoding style: attend to each half of the context, then merge."""
    CALLS.append(q.shape[0])
    k, v = attention.gather_kv(kv_cache_layer, block_table, seq_len)
    half = seq_len // 2
    if half == 0:
        return attention.dense_causal_attention(q, k, v, start_pos=start_pos, scale=scale)
    a = attention.partial_attention(q, k[:half], v[:half], start_pos=start_pos, key_offset=0, scale=scale)
    b = attention.partial_attention(q, k[half:], v[half:], start_pos=start_pos, key_offset=half, scale=scale)
    return attention.finalize(attention.merge_attention_states(a, b))


class VendorPlatform(Platform):
    _enum = PlatformEnum.OOT
    device_name = "npu"
    device_type = "npu"

    @classmethod
    def get_attn_backend_cls(cls, selected_backend, head_size):
        return "mini_vendor.vendor_paged_attention"

    @classmethod
    def support_static_graph_mode(cls):
        return True

    @classmethod
    def check_and_update_config(cls, config):
        # The vendor kernel reads KV in tiles of 32 tokens.
        return replace(config, cache_config=replace(config.cache_config, block_size=32))


class NoAttentionPlatform(Platform):
    _enum = PlatformEnum.OOT


def register():
    return "mini_vendor.VendorPlatform"


def register_broken():
    return "mini_vendor.NoAttentionPlatform"
'''


@pytest.fixture
def vendor_package(tmp_path, monkeypatch):
    (tmp_path / "mini_vendor.py").write_text(textwrap.dedent(VENDOR_PACKAGE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "mini_vendor", raising=False)
    return tmp_path


# --------------------------------------------------------------------------- resolution rules


def test_current_platform_is_resolved_lazily_to_the_cpu_builtin():
    assert platforms._current_platform is None, "importing mini_vllm.platforms must not resolve the platform"
    p = platforms.current_platform
    assert type(p) is platforms.CpuPlatform and p.is_cpu() and not p.is_out_of_tree()
    assert platforms.current_platform is p, "the platform is resolved once and reused"


@pytest.mark.parametrize("builtin, oot, expected", [
    ({"cpu": answers("a.Cpu")}, {}, "a.Cpu"),
    ({"cpu": answers("a.Cpu")}, {"npu": answers("b.Npu")}, "b.Npu"),            # one OOT beats a builtin
    ({"cpu": answers("a.Cpu")}, {"npu": answers(None)}, "a.Cpu"),               # inactive OOT: builtin
    ({"cpu": answers("a.Cpu")}, {"npu": raises}, "a.Cpu"),                      # a crashing probe is inactive
    ({"cpu": answers(None), "cuda": answers("a.Cuda")}, {}, "a.Cuda"),
    ({"cpu": answers(None)}, {}, "mini_vllm.platforms.UnspecifiedPlatform"),   # no floor
    ({"cpu": answers("a.Cpu")}, {"npu": answers("")}, ""),                    # only None means absent
    ({"cpu": answers("a.Cpu"), "cuda": answers("a.Cuda")}, {"npu": answers("b.Npu")}, "b.Npu"),
])
def test_resolution_follows_upstream_rules(builtin, oot, expected):
    assert platforms.resolve_current_platform_cls_qualname(builtin, oot) == expected


@pytest.mark.parametrize("builtin, oot", [
    ({"cpu": answers("a.Cpu")}, {"npu": answers("b.Npu"), "tpu2": answers("c.Tpu")}),
    ({"cpu": answers("a.Cpu"), "cuda": answers("a.Cuda")}, {}),
])
def test_two_active_plugins_of_one_kind_are_an_error(builtin, oot):
    with pytest.raises(RuntimeError, match="Only one platform plugin can be activated"):
        platforms.resolve_current_platform_cls_qualname(builtin, oot)


def test_load_plugins_honours_the_allow_list_and_skips_broken_plugins(monkeypatch, caplog):
    eps = [FakeEntryPoint("a", answers("x.A")), FakeEntryPoint("b", ImportError("no module")),
           FakeEntryPoint("c", answers("x.C"))]
    with caplog.at_level(logging.ERROR, logger="mini_vllm.platforms"):
        loaded = platforms.load_plugins_by_group(GROUP, eps)
    assert list(loaded) == ["a", "c"]
    assert "Failed to load plugin b" in caplog.text
    assert list(platforms.load_plugins_by_group(GROUP, eps, allowed=["c"])) == ["c"]
    monkeypatch.setenv(platforms.PLUGINS_ENV, "a")
    assert list(platforms.load_plugins_by_group(GROUP, eps)) == ["a"]
    monkeypatch.setenv(platforms.PLUGINS_ENV, "")
    assert platforms.load_plugins_by_group(GROUP, eps) == {}, "an empty allow-list loads nothing"


def test_injected_entry_points_are_discovered_in_their_group_only():
    platforms.inject_entry_point(FakeEntryPoint("npu", answers("b.Npu")))
    platforms.inject_entry_point(FakeEntryPoint("other", answers("b.Other"), group="vllm.general_plugins"))
    assert [ep.name for ep in platforms.entry_points(GROUP)] == ["npu"]
    with pytest.raises(TypeError, match="needs .name"):
        platforms.inject_entry_point(object())


# --------------------------------------------------------------------------- the engine on a platform


def generate(**kwargs):
    params = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
    llm = LLM(num_blocks=64, **kwargs)
    outs = llm.generate(["the platform layer", "one engine, any silicon"], params)
    return llm.llm_engine.engine_core, [o.output_token_ids for o in outs]


def test_engine_on_the_cpu_platform_runs_eager_with_numpy_attention():
    core, _ = generate()
    assert type(core.platform) is platforms.CpuPlatform
    assert core.attn_backend.__name__ == "paged_attention"
    assert core.cudagraph_mode == "NONE"
    assert core.config.block_size == 16, "the CPU platform keeps the user's block size"


def test_out_of_tree_platform_changes_the_engines_decisions(vendor_package, caplog):
    cpu_core, cpu_tokens = generate()
    platforms.reset_current_platform()
    platforms.inject_entry_point(EntryPoint(name="npu", value="mini_vendor:register", group=GROUP))
    with caplog.at_level(logging.INFO, logger="mini_vllm.platforms"):
        core, tokens = generate()
    import mini_vendor

    assert type(core.platform).__name__ == "VendorPlatform" and core.platform.is_out_of_tree()
    assert "Platform plugin npu is activated" in caplog.text
    assert core.attn_backend is mini_vendor.vendor_paged_attention
    assert len(mini_vendor.CALLS) > 0, "the engine must run the platform's attention, not its own"
    assert core.config.block_size == 32, "check_and_update_config's answer is the config the engine uses"
    assert core.kv_cache_manager.block_size == 32
    assert core.cudagraph_mode == "FULL_AND_PIECEWISE"
    assert tokens == cpu_tokens, "both attention implementations are exact; the tokens must agree"


def test_engine_refuses_a_platform_without_an_attention_backend(vendor_package):
    platforms.inject_entry_point(EntryPoint(name="npu", value="mini_vendor:register_broken", group=GROUP))
    with pytest.raises(RuntimeError, match="names no attention backend"):
        EngineCore(num_blocks=64)


def test_platform_is_read_once_at_construction(vendor_package):
    core = EngineCore(num_blocks=64)
    platforms.inject_entry_point(EntryPoint(name="npu", value="mini_vendor:register", group=GROUP))
    platforms.reset_current_platform()
    assert type(platforms.current_platform).__name__ == "VendorPlatform"
    assert type(core.platform) is platforms.CpuPlatform, "a built engine keeps the platform it was built on"


def test_cpu_platform_reports_system_memory():
    total = platforms.CpuPlatform.get_device_total_memory()
    assert total > 2**30 and total % 4096 == 0
    with pytest.raises(NotImplementedError):
        platforms.Platform.get_device_total_memory()
