"""Spec for lab 17-01: plugin loading, upstream's platform resolution rules, and an
out-of-tree platform that changes the engine's decisions with no edit to the engine."""
import logging
from dataclasses import replace
from importlib.metadata import EntryPoint

import pytest

from mini_vllm import platforms
from mini_vllm.config import EngineConfig
from mini_vllm.engine import LLM, EngineCore
from mini_vllm.sampler import SamplingParams

UNSPECIFIED = "mini_vllm.platforms.UnspecifiedPlatform"


@pytest.fixture(autouse=True)
def clean_platform_state(monkeypatch):
    monkeypatch.delenv("NPU_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv(platforms.PLUGINS_ENV, raising=False)
    platforms.clear_injected_entry_points()
    platforms.reset_current_platform()
    yield
    platforms.clear_injected_entry_points()
    platforms.reset_current_platform()


class EP:
    """An entry-point-like object: a name and what ``load()`` gives (or raises)."""

    def __init__(self, name, obj):
        self.name, self.value, self.group, self.obj = name, f"pkg:{name}", platforms.PLATFORM_PLUGINS_GROUP, obj

    def load(self):
        if isinstance(self.obj, Exception):
            raise self.obj
        return self.obj


def says(value):
    return lambda: value


def crashes():
    raise OSError("driver probe failed")


# --------------------------------------------------------------------------- task 1


def test_plugins_load_in_discovery_order(lab):
    f, g = says("a.F"), says("a.G")
    plugins, failed = lab.load_plugins_by_group([EP("zeta", f), EP("alpha", g)])
    assert list(plugins.items()) == [("zeta", f), ("alpha", g)], "keep discovery order, map name -> loaded object"
    assert failed == []


def test_allow_list_filters_by_name_and_empty_list_loads_nothing(lab):
    eps = [EP("a", says("x.A")), EP("b", says("x.B")), EP("c", says("x.C"))]
    assert list(lab.load_plugins_by_group(eps, allowed=["c", "a"])[0]) == ["a", "c"], (
        "the allow-list filters; it does not reorder")
    assert lab.load_plugins_by_group(eps, allowed=[]) == ({}, []), "VLLM_PLUGINS='' means no plugin at all"
    assert list(lab.load_plugins_by_group(eps, allowed=None)[0]) == ["a", "b", "c"], "None means every plugin"


def test_a_plugin_that_fails_to_load_is_skipped_and_reported(lab, caplog):
    eps = [EP("good", says("x.G")), EP("broken", ImportError("no module named vendor_kernels")), EP("late", says("x.L"))]
    with caplog.at_level(logging.ERROR):
        plugins, failed = lab.load_plugins_by_group(eps)
    assert list(plugins) == ["good", "late"], "one broken package must not stop the others from loading"
    assert failed == ["broken"]
    assert "broken" in caplog.text, "upstream logs the failure (logger.exception) instead of hiding it"


def test_a_filtered_out_plugin_is_never_loaded(lab):
    plugins, failed = lab.load_plugins_by_group([EP("broken", ImportError("x")), EP("ok", says("x.O"))], allowed=["ok"])
    assert list(plugins) == ["ok"] and failed == [], "a name outside the allow-list is not even imported"


# --------------------------------------------------------------------------- task 2


def test_activated_keeps_plugins_that_answer(lab):
    assert lab.activated({"a": says("x.A"), "b": says(None), "c": says("x.C")}) == ["a", "c"]


def test_a_plugin_that_raises_is_not_activated(lab):
    assert lab.activated({"a": crashes, "b": says("x.B")}) == ["b"], "a crashing probe counts as 'no device'"
    assert lab.activated({"empty": says("")}) == ["empty"], "only None means 'not here'"


# --------------------------------------------------------------------------- task 3


@pytest.mark.parametrize("builtin, oot, expected", [
    pytest.param({"cpu": says("a.Cpu")}, {}, "a.Cpu", id="one-builtin"),
    pytest.param({"cpu": says("a.Cpu")}, {"npu": says("b.Npu")}, "b.Npu", id="oot-beats-builtin"),
    pytest.param({"cpu": says("a.Cpu"), "cuda": says("a.Cuda")}, {"npu": says("b.Npu")}, "b.Npu",
                 id="oot-beats-two-builtins"),
    pytest.param({"cpu": says("a.Cpu")}, {"npu": says(None)}, "a.Cpu", id="inactive-oot"),
    pytest.param({"cpu": says("a.Cpu")}, {"npu": crashes}, "a.Cpu", id="crashing-oot"),
    pytest.param({"cpu": says(None), "cuda": says("a.Cuda")}, {}, "a.Cuda", id="cuda-only"),
    pytest.param({"cpu": says(None), "cuda": says(None)}, {}, UNSPECIFIED, id="nothing-no-cpu-floor"),
    pytest.param({}, {}, UNSPECIFIED, id="no-plugins"),
])
def test_resolution_rules(lab, builtin, oot, expected):
    assert lab.resolve_platform_qualname(builtin, oot) == expected


@pytest.mark.parametrize("builtin, oot, names", [
    pytest.param({"cpu": says("a.Cpu")}, {"npu": says("b.Npu"), "tpu2": says("c.Tpu")}, "['npu', 'tpu2']",
                 id="two-oot"),
    pytest.param({"cpu": says("a.Cpu"), "cuda": says("a.Cuda")}, {}, "['cpu', 'cuda']", id="two-builtin"),
])
def test_two_active_plugins_of_one_kind_refuse_to_start(lab, builtin, oot, names):
    with pytest.raises(RuntimeError, match="Only one platform plugin can be activated") as err:
        lab.resolve_platform_qualname(builtin, oot)
    assert names in str(err.value), "the error names the plugins that collided"


def test_lab_resolver_agrees_with_the_engines(lab):
    cases = [({"cpu": says("a.Cpu")}, {"npu": says("b.Npu")}), ({"cpu": says(None)}, {}),
             ({"cpu": says("a.Cpu")}, {"npu": crashes})]
    for builtin, oot in cases:
        assert lab.resolve_platform_qualname(builtin, oot) == platforms.resolve_current_platform_cls_qualname(builtin, oot)


# --------------------------------------------------------------------------- tasks 4-6


def test_npu_attention_backend_is_this_modules_kernel(lab, caplog):
    qualname = lab.NpuPlatform.get_attn_backend_cls(None, 64)
    assert platforms.resolve_obj_by_qualname(qualname) is lab.npu_paged_attention, (
        "return the kernel's qualified name in *this* module (the lab file has a private module name)")
    assert lab.NpuPlatform.get_attn_backend_cls("NPU_ATTN", 8) == qualname
    with caplog.at_level(logging.INFO):
        assert lab.NpuPlatform.get_attn_backend_cls("FLASH_ATTN", 128) == qualname
    assert "Cannot use FLASH_ATTN backend on NPU." in caplog.text, "a foreign backend is logged and ignored"


def test_npu_refuses_head_sizes_its_kernel_cannot_tile(lab):
    with pytest.raises(ValueError, match="12"):
        lab.NpuPlatform.get_attn_backend_cls(None, 12)


@pytest.mark.parametrize("block_size, expected", [(16, 32), (1, 32), (32, 32), (33, 64), (64, 64), (96, 96)])
def test_npu_rounds_the_block_size_up_to_its_tile(lab, block_size, expected):
    config = EngineConfig.create(block_size=block_size, num_blocks=512, max_model_len=256)
    updated = lab.NpuPlatform.check_and_update_config(config)
    assert updated.block_size == expected
    assert updated.scheduler_config == config.scheduler_config and updated.num_blocks == config.num_blocks, (
        "only the block size changes")
    if block_size == expected:
        assert updated is config, "a config that already fits is returned unchanged"


def test_npu_plugin_answers_only_when_a_device_is_visible(lab, monkeypatch):
    assert lab.npu_platform_plugin() is None
    monkeypatch.setenv("NPU_VISIBLE_DEVICES", "")
    assert lab.npu_platform_plugin() is None, "an empty device list means no device"
    monkeypatch.setenv("NPU_VISIBLE_DEVICES", "0,1")
    assert platforms.resolve_obj_by_qualname(lab.npu_platform_plugin()) is lab.NpuPlatform


def run_engine():
    llm = LLM(num_blocks=64)
    outs = llm.generate(["one engine", "any silicon at all"], SamplingParams(temperature=0.0, max_tokens=10, ignore_eos=True))
    return llm.llm_engine.engine_core, [o.output_token_ids for o in outs]


def entry_point(lab):
    return EntryPoint(name="npu", value=f"{lab.__name__}:npu_platform_plugin", group=platforms.PLATFORM_PLUGINS_GROUP)


def test_out_of_tree_platform_changes_the_engines_decisions(lab, monkeypatch):
    cpu_core, cpu_tokens = run_engine()
    assert lab.engine_decisions(cpu_core) == dict(platform="CpuPlatform", attention="paged_attention",
                                                   block_size=16, cudagraph_mode="NONE")
    monkeypatch.setenv("NPU_VISIBLE_DEVICES", "0")
    platforms.reset_current_platform()
    platforms.inject_entry_point(entry_point(lab))
    npu_core, npu_tokens = run_engine()
    assert lab.engine_decisions(npu_core) == dict(platform="NpuPlatform", attention="npu_paged_attention",
                                                   block_size=32, cudagraph_mode="FULL_AND_PIECEWISE")
    assert npu_tokens == cpu_tokens, "two exact attention kernels: the greedy tokens must agree"


def test_installed_plugin_without_a_device_leaves_the_cpu_in_charge(lab):
    assert lab.npu_platform_plugin() is None, "NPU_VISIBLE_DEVICES is unset: no device, so the plugin answers None"
    platforms.inject_entry_point(entry_point(lab))
    assert type(platforms.current_platform) is platforms.CpuPlatform, (
        "the package is installed but NPU_VISIBLE_DEVICES is unset: the plugin must answer None")

