"""Which hardware the engine runs on, and what that hardware answers.

vLLM asks one object, ``current_platform``, every hardware question: which attention
backend, which dtypes, whether graphs can be captured, how much device memory there is.
The base class is vllm/platforms/interface.py:105@0decac0 (Platform); each backend
(``cuda.py``, ``cpu.py``, ``rocm.py``, ...) is a subclass, and out-of-tree hardware is a
subclass in another package, found through the entry-point group
``vllm.platform_plugins`` (vllm/plugins/__init__.py:19@0decac0 (PLATFORM_PLUGINS_GROUP)).

This module keeps upstream's names and its resolution rules:

- A *platform plugin* is a function that returns the qualified name of a ``Platform``
  subclass when its hardware is present, else ``None``. Built-in ones live in
  ``builtin_platform_plugins``; out-of-tree ones are entry points of the group.
- ``resolve_current_platform_cls_qualname`` calls every plugin and counts the ones that
  answered. Exactly one out-of-tree plugin wins, even over an active built-in; two or
  more active out-of-tree plugins, or (without any) two or more active built-ins, are a
  ``RuntimeError``; none active gives ``UnspecifiedPlatform``
  (vllm/platforms/__init__.py:212@0decac0 (resolve_current_platform_cls_qualname)).
  There is no "CPU floor": upstream's CPU plugin only answers for a CPU build of vLLM
  or on macOS. mini_vllm's one built-in, ``cpu``, answers always, because numpy runs
  everywhere.
- ``current_platform`` is resolved lazily, on first access, so a plugin package can
  ``from mini_vllm.platforms import Platform`` to subclass it without triggering the
  resolution it takes part in (vllm/platforms/__init__.py:262@0decac0 (__getattr__)).

The seam for tests and labs is ``inject_entry_point``: it adds an entry-point-like
object (anything with ``name``, ``value``, ``group`` and ``load()``, e.g.
``importlib.metadata.EntryPoint``) to what ``entry_points`` discovers, so a plugin works
without ``pip install``. ``reset_current_platform`` forgets the resolved platform.
``MINI_VLLM_PLUGINS`` (comma-separated names) limits which plugins load, as upstream's
``VLLM_PLUGINS`` (vllm/envs.py:101@0decac0 (VLLM_PLUGINS)).

Upstream's ``Platform`` has 75 methods and 12 class attributes (counted with ``ast`` by
``phase-17-hardware-backends-and-plugins/labs/lab-02-run-cpu-vllm/solution.py``); this one
keeps the few the mini engine asks.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

logger = logging.getLogger(__name__)

PLATFORM_PLUGINS_GROUP = "vllm.platform_plugins"
PLUGINS_ENV = "MINI_VLLM_PLUGINS"


class PlatformEnum(enum.Enum):
    """vllm/platforms/interface.py:38@0decac0 (PlatformEnum)."""

    CUDA = enum.auto()
    ROCM = enum.auto()
    TPU = enum.auto()
    XPU = enum.auto()
    CPU = enum.auto()
    OOT = enum.auto()
    UNSPECIFIED = enum.auto()


class Platform:
    """The questions the mini engine asks its hardware, with upstream's method names.

    Every answer is a class-level fact, so the methods are classmethods, as upstream's
    mostly are. ``get_attn_backend_cls`` returns a qualified name, not an object, as
    upstream returns a class path string: the engine imports it.
    """

    _enum: PlatformEnum
    device_name: str = ""
    device_type: str = ""
    dist_backend: str = ""

    @property
    def supported_dtypes(self) -> list[str]:
        """The first entry is the fallback when a requested dtype is unsupported
        (vllm/platforms/interface.py:153@0decac0 (supported_dtypes))."""
        return ["bfloat16", "float16", "float32"]

    def is_cpu(self) -> bool:
        return self._enum == PlatformEnum.CPU

    def is_out_of_tree(self) -> bool:
        return self._enum == PlatformEnum.OOT

    def is_unspecified(self) -> bool:
        return self._enum == PlatformEnum.UNSPECIFIED

    @classmethod
    def get_attn_backend_cls(cls, selected_backend: str | None, head_size: int) -> str:
        """Qualified name of the attention function for this hardware. The base class
        has none (upstream returns ``""``); the engine refuses to start on it."""
        return ""

    @classmethod
    def support_static_graph_mode(cls) -> bool:
        """Whether captured graphs can replay here (upstream False by default, True on
        CUDA, ROCm and XPU): vllm/platforms/interface.py:925@0decac0 (support_static_graph_mode)."""
        return False

    @classmethod
    def check_and_update_config(cls, config):
        """Return ``config`` adjusted for this hardware. Upstream mutates the
        ``VllmConfig`` in place (vllm/platforms/interface.py:437@0decac0 (check_and_update_config));
        mini_vllm's configs are frozen, so the adjusted copy is returned."""
        return config

    @classmethod
    def get_device_total_memory(cls, device_id: int = 0) -> int:
        raise NotImplementedError(f"{cls.__name__} does not report device memory")


class CpuPlatform(Platform):
    """The numpy engine's own hardware. Upstream's ``CpuPlatform``
    (vllm/platforms/cpu.py:41@0decac0 (CpuPlatform)) answers ``CPU_ATTN`` and, unless the
    user set ``--block-size``, sets the block size to 128; mini_vllm keeps the user's
    block size (its numpy kernel has no preferred tile) and keeps its default of 16."""

    _enum = PlatformEnum.CPU
    device_name = "cpu"
    device_type = "cpu"
    dist_backend = "gloo"

    @property
    def supported_dtypes(self) -> list[str]:
        return ["float64", "float32"]

    @classmethod
    def get_attn_backend_cls(cls, selected_backend: str | None, head_size: int) -> str:
        if selected_backend and selected_backend != "CPU_ATTN":
            logger.info("Cannot use %s backend on CPU.", selected_backend)
        return "mini_vllm.attention.paged_attention"

    @classmethod
    def get_device_total_memory(cls, device_id: int = 0) -> int:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class UnspecifiedPlatform(Platform):
    """What resolution returns when no plugin answers
    (vllm/platforms/interface.py:1027@0decac0 (UnspecifiedPlatform))."""

    _enum = PlatformEnum.UNSPECIFIED


def cpu_platform_plugin() -> str | None:
    return "mini_vllm.platforms.CpuPlatform"


builtin_platform_plugins: dict[str, Callable[[], str | None]] = {"cpu": cpu_platform_plugin}

# --------------------------------------------------------------------------- entry points

_injected: list[Any] = []


def inject_entry_point(entry_point) -> None:
    """Make ``entry_points`` discover ``entry_point`` as if a package had declared it.
    It needs ``name``, ``value``, ``group`` and ``load()``."""
    for attr in ("name", "value", "group", "load"):
        if not hasattr(entry_point, attr):
            raise TypeError(f"an entry point needs .{attr}; got {entry_point!r}")
    _injected.append(entry_point)


def clear_injected_entry_points() -> None:
    _injected.clear()


def entry_points(group: str) -> list:
    """Installed entry points of ``group``, then injected ones, in that order."""
    return list(importlib.metadata.entry_points(group=group)) + [ep for ep in _injected if ep.group == group]


def load_plugins_by_group(group: str, discovered: Iterable | None = None,
                          allowed: list[str] | None = None) -> dict[str, Callable[[], Any]]:
    """``{name: loaded function}`` for the group's plugins, in discovery order.

    ``allowed`` (default: ``MINI_VLLM_PLUGINS`` split on commas, or None = all) keeps
    only the named plugins. A plugin whose ``load()`` raises is logged and skipped, not
    fatal: vllm/plugins/__init__.py:28@0decac0 (load_plugins_by_group).
    """
    if discovered is None:
        discovered = entry_points(group)
    if allowed is None and os.environ.get(PLUGINS_ENV) is not None:
        allowed = os.environ[PLUGINS_ENV].split(",")
    plugins: dict[str, Callable[[], Any]] = {}
    for ep in discovered:
        if allowed is not None and ep.name not in allowed:
            continue
        try:
            plugins[ep.name] = ep.load()
        except Exception:
            logger.exception("Failed to load plugin %s", ep.name)
    return plugins


# --------------------------------------------------------------------------- resolution


def resolve_current_platform_cls_qualname(builtin: dict[str, Callable] | None = None,
                                          oot: dict[str, Callable] | None = None) -> str:
    """Upstream's rules: one active out-of-tree plugin wins; several of one kind are an
    error; none gives ``UnspecifiedPlatform``. A plugin that raises counts as inactive."""
    builtin = builtin_platform_plugins if builtin is None else builtin
    oot = load_plugins_by_group(PLATFORM_PLUGINS_GROUP) if oot is None else oot
    active = []
    for name, func in list(builtin.items()) + list(oot.items()):
        try:
            if func() is not None:
                active.append(name)
        except Exception:
            pass
    active_oot = [n for n in oot if n in active]
    active_builtin = [n for n in builtin if n in active]
    if len(active_oot) >= 2:
        raise RuntimeError(f"Only one platform plugin can be activated, but got: {active_oot}")
    if len(active_oot) == 1:
        logger.info("Platform plugin %s is activated", active_oot[0])
        return oot[active_oot[0]]()
    if len(active_builtin) >= 2:
        raise RuntimeError(f"Only one platform plugin can be activated, but got: {active_builtin}")
    if len(active_builtin) == 1:
        return builtin[active_builtin[0]]()
    return "mini_vllm.platforms.UnspecifiedPlatform"


def resolve_obj_by_qualname(qualname: str):
    """``"pkg.mod.Name"`` -> the object (vllm/utils/import_utils.py resolves the same way)."""
    module_name, _, attr = qualname.rpartition(".")
    if not module_name:
        raise ValueError(f"not a qualified name: {qualname!r}")
    return getattr(importlib.import_module(module_name), attr)


_current_platform: Platform | None = None


def reset_current_platform() -> None:
    """Forget the resolved platform; the next access resolves again."""
    global _current_platform
    _current_platform = None


def __getattr__(name: str):
    if name == "current_platform":
        global _current_platform
        if _current_platform is None:
            _current_platform = resolve_obj_by_qualname(resolve_current_platform_cls_qualname())()
        return _current_platform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
