"""Lab 17-01 (reference): how vLLM 0.22.1 picks its platform, and an out-of-tree
platform that changes the engine's decisions without an edit to the engine.

Upstream: plugins are loaded by vllm/plugins/__init__.py:28@0decac0 (load_plugins_by_group)
and the platform is chosen by
vllm/platforms/__init__.py:212@0decac0 (resolve_current_platform_cls_qualname).
``mini_vllm.platforms`` holds the engine's own copy of both; here you write them again,
then write the vendor side: a ``Platform`` subclass and the plugin function that
announces it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace

from mini_vllm import attention
from mini_vllm.platforms import Platform, PlatformEnum

logger = logging.getLogger(__name__)

UNSPECIFIED = "mini_vllm.platforms.UnspecifiedPlatform"
NPU_ENV = "NPU_VISIBLE_DEVICES"
NPU_BLOCK = 32


def load_plugins_by_group(discovered, allowed: list[str] | None = None) -> tuple[dict, list[str]]:
    """Task 1. ``(plugins, failed)``: ``plugins`` maps each allowed entry point's name to
    what its ``load()`` returned, in discovery order; ``failed`` lists, in order, the
    allowed names whose ``load()`` raised. ``allowed`` None means every name."""
    plugins: dict = {}
    failed: list[str] = []
    for ep in discovered:
        if allowed is not None and ep.name not in allowed:
            continue
        try:
            plugins[ep.name] = ep.load()
        except Exception:
            logger.exception("Failed to load plugin %s", ep.name)
            failed.append(ep.name)
    return plugins, failed


def activated(plugins: dict) -> list[str]:
    """Task 2. Names of the plugins whose function returns something other than None,
    in dict order. A function that raises is not activated."""
    names = []
    for name, func in plugins.items():
        try:
            if func() is not None:
                names.append(name)
        except Exception:
            pass
    return names


def resolve_platform_qualname(builtin: dict, oot: dict) -> str:
    """Task 3. The qualified name of the platform class, by upstream's rules: one active
    out-of-tree plugin wins; two or more active out-of-tree plugins raise
    ``RuntimeError``; with none, one active built-in wins and two or more raise; no
    active plugin at all gives ``UNSPECIFIED``."""
    active_oot = activated(oot)
    if len(active_oot) >= 2:
        raise RuntimeError(f"Only one platform plugin can be activated, but got: {active_oot}")
    if len(active_oot) == 1:
        return oot[active_oot[0]]()
    active_builtin = activated(builtin)
    if len(active_builtin) >= 2:
        raise RuntimeError(f"Only one platform plugin can be activated, but got: {active_builtin}")
    if len(active_builtin) == 1:
        return builtin[active_builtin[0]]()
    return UNSPECIFIED


def npu_paged_attention(q, kv_cache_layer, block_table, seq_len, start_pos, scale=None):
    """The NPU's attention kernel: the same math as ``paged_attention``, computed over
    two halves of the context and merged (phase 04's flash-decoding merge), as a
    different chip would order the work."""
    k, v = attention.gather_kv(kv_cache_layer, block_table, seq_len)
    half = seq_len // 2
    if half == 0:
        return attention.dense_causal_attention(q, k, v, start_pos=start_pos, scale=scale)
    a = attention.partial_attention(q, k[:half], v[:half], scale=scale, start_pos=start_pos)
    b = attention.partial_attention(q, k[half:], v[half:], scale=scale, start_pos=start_pos, key_offset=half)
    return attention.finalize(attention.merge_attention_states(a, b))


class NpuPlatform(Platform):
    """A vendor's accelerator, shipped outside the engine."""

    _enum = PlatformEnum.OOT
    device_name = "npu"
    device_type = "npu"
    dist_backend = "hccl"

    @classmethod
    def get_attn_backend_cls(cls, selected_backend: str | None, head_size: int) -> str:
        """Task 4. The qualified name of ``npu_paged_attention`` in this module. A
        ``selected_backend`` other than None or "NPU_ATTN" is logged at INFO as
        "Cannot use <name> backend on NPU." and ignored; a head size that is not a
        multiple of 8 raises ``ValueError`` naming the head size."""
        if selected_backend and selected_backend != "NPU_ATTN":
            logger.info("Cannot use %s backend on NPU.", selected_backend)
        if head_size % 8:
            raise ValueError(f"NPU attention needs a head size that is a multiple of 8, got {head_size}")
        return f"{__name__}.npu_paged_attention"

    @classmethod
    def check_and_update_config(cls, config):
        """Task 5. ``config`` with its block size rounded up to a multiple of
        ``NPU_BLOCK`` (the kernel's KV tile); a config that already fits is returned
        as is."""
        block_size = config.cache_config.block_size
        if block_size % NPU_BLOCK == 0:
            return config
        rounded = -(-block_size // NPU_BLOCK) * NPU_BLOCK
        return replace(config, cache_config=replace(config.cache_config, block_size=rounded))

    @classmethod
    def support_static_graph_mode(cls) -> bool:
        return True


def npu_platform_plugin() -> str | None:
    """Task 6. The plugin function an entry point names: the qualified name of
    ``NpuPlatform`` in this module when ``NPU_ENV`` is set and not empty (a device is
    visible), else None."""
    if os.environ.get(NPU_ENV):
        return f"{__name__}.NpuPlatform"
    return None


def engine_decisions(core) -> dict:
    """What an ``EngineCore`` decided from its platform, as plain values."""
    return dict(
        platform=type(core.platform).__name__,
        attention=core.attn_backend.__name__,
        block_size=core.config.block_size,
        cudagraph_mode=core.cudagraph_mode,
    )


if __name__ == "__main__":
    from importlib.metadata import EntryPoint

    from mini_vllm import platforms
    from mini_vllm.engine import EngineCore

    print("builtin only:", engine_decisions(EngineCore(num_blocks=64)))
    os.environ[NPU_ENV] = "0"
    platforms.reset_current_platform()
    platforms.inject_entry_point(
        EntryPoint(name="npu", value=f"{__name__}:npu_platform_plugin", group=platforms.PLATFORM_PLUGINS_GROUP))
    print("with the npu plugin:", engine_decisions(EngineCore(num_blocks=64)))
