"""The engine's configuration, composed as upstream composes it.

``EngineConfig`` holds one ``ModelConfig``, one ``CacheConfig`` and one
``SchedulerConfig``, as ``VllmConfig`` holds ``model_config``, ``cache_config`` and
``scheduler_config`` (vllm/config/vllm.py:289@0decac0 ("model_config: ModelConfig")).
Each config validates its own fields when it is built, so bad input is refused once, at
the boundary, with the field's name and what is allowed.

Two seams let a learner's own lab code run inside the real engine loop instead of being
monkeypatched in:

- ``SchedulerConfig.scheduler_cls``: the scheduler class the engine core builds, as
  upstream's ``scheduler_cls`` (vllm/config/scheduler.py:127@0decac0 ("scheduler_cls: str | type[object] | None"))
  resolved by ``get_scheduler_cls`` (vllm/config/scheduler.py:168@0decac0 (get_scheduler_cls)).
- ``CacheConfig.block_pool_cls``: the block pool the KV-cache manager is handed (mini_vllm's
  own seam; upstream's coordinator always builds ``BlockPool``).

Both take a class, a ``"package.module.ClassName"`` string, or a lab file:
``"path/to/solution.py"`` (its ``Scheduler`` / ``BlockPool``) or
``"path/to/file.py:ClassName"``. Unset, they fall back to the environment variables
``MINI_VLLM_SCHEDULER_CLS`` / ``MINI_VLLM_BLOCK_POOL_CLS`` and then to the engine's own
classes, so a whole test suite can run against a learner's file without code changes.
"""

from __future__ import annotations

import importlib
import importlib.util
import numbers
import os
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import ModuleType

SCHEDULER_CLS_ENV = "MINI_VLLM_SCHEDULER_CLS"
BLOCK_POOL_CLS_ENV = "MINI_VLLM_BLOCK_POOL_CLS"


def check_int(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as a plain int, or raise naming the field. Python and numpy ints
    are accepted; bools, floats and strings are not (no silent coercion)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool,)) and not (hasattr(value, "dtype") and value.dtype == bool):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def _set(obj, name: str, value) -> None:
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------- class seams

_LOADED: dict[Path, ModuleType] = {}


def _module_name(path: Path) -> str:
    parts = path.with_suffix("").parts[-4:]
    return "labmod_" + "_".join(re.sub(r"\W", "_", p) for p in parts)


def load_module_from_path(path: Path | str) -> ModuleType:
    """Import one ``.py`` file under a unique module name, once per process.

    The engine's seams and the course's lab loader both load learner files through this
    one function, so a lab file used by a test and by the engine in the same process is
    one module with one set of classes.
    """
    path = Path(path).resolve()
    if path in _LOADED:
        return _LOADED[path]
    if not path.is_file():
        raise FileNotFoundError(f"lab file not found: {path}")
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so dataclasses and pickling can find the module.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _LOADED[path] = module
    return module



def resolve_class(spec, default_attr: str, field_name: str):
    """Turn a class, ``"pkg.mod.Class"``, ``"file.py"`` or ``"file.py:Class"`` into a class.

    A file is imported by path under a private module name, so a learner's ``starter.py``
    and ``solution.py`` never clash with each other or with ``mini_vllm``.
    """
    if isinstance(spec, type):
        return spec
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"{field_name} must be a class, 'package.module.Class', 'file.py' or 'file.py:Class', got {spec!r}")
    path_part, _, attr = spec.partition(":") if ".py" in spec else ("", "", "")
    if path_part.endswith(".py"):
        if not Path(path_part).expanduser().is_file():
            raise ValueError(f"{field_name}: no such file {path_part!r}")
        attr = attr or default_attr
        module = load_module_from_path(Path(path_part).expanduser())
        where = f"{path_part}"
    else:
        module_name, _, attr = spec.rpartition(".")
        if not module_name:
            raise ValueError(f"{field_name} must name a module and a class ('package.module.Class'), got {spec!r}")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"{field_name}: cannot import {module_name!r} ({exc})") from exc
        where = module_name
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise ValueError(f"{field_name}: {where} has no class {attr!r}")
    return cls


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelConfig:
    """Every number of a Llama-style (optionally Mixtral-style MoE) decoder that mini_vllm
    runs, loads or does memory arithmetic on: the one model-shape type of the course.

    The defaults are the seeded tiny model the engine runs without a checkpoint.
    ``num_experts = 0`` means a dense MLP. The checkpoint fields (``model_type`` to
    ``eos_token_id``) are filled by ``mini_vllm.loader`` from ``config.json``.
    """

    vocab_size: int = 257
    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 8
    intermediate_size: int = 64
    max_model_len: int = 512
    rope_theta: float = 10000.0
    seed: int = 0
    tie_word_embeddings: bool = False
    num_experts: int = 0
    num_experts_per_tok: int = 0
    name: str = ""
    # From a checkpoint's config.json (mini_vllm.loader.config_from_hf):
    model_type: str = "llama"
    rms_norm_eps: float = 1e-6
    qkv_bias: bool = False
    o_bias: bool = False
    rope_scaling: dict | None = field(default=None, hash=False)
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                     "head_dim", "intermediate_size", "max_model_len"):
            _set(self, name, check_int(f"model_config.{name}", getattr(self, name)))
        for name in ("num_experts", "num_experts_per_tok"):
            _set(self, name, check_int(f"model_config.{name}", getattr(self, name), minimum=0))
        _set(self, "seed", check_int("model_config.seed", self.seed, minimum=0))
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"model_config.num_heads ({self.num_heads}) must be a multiple of "
                             f"num_kv_heads ({self.num_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"model_config.head_dim must be even for RoPE, got {self.head_dim}")
        if self.num_experts and not 1 <= self.num_experts_per_tok <= self.num_experts:
            raise ValueError(f"model_config.num_experts_per_tok must be in [1, num_experts={self.num_experts}], "
                             f"got {self.num_experts_per_tok}")

    @classmethod
    def from_hf_config(cls, cfg: dict, **overrides) -> "ModelConfig":
        """The shape numbers of a Hugging Face ``config.json`` dict (Llama, Qwen2,
        Mixtral). Missing required keys raise naming the key."""
        try:
            heads = int(cfg["num_attention_heads"])
            values = dict(
                vocab_size=int(cfg["vocab_size"]),
                hidden_size=int(cfg["hidden_size"]),
                num_layers=int(cfg["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
                head_dim=int(cfg.get("head_dim") or int(cfg["hidden_size"]) // heads),
                intermediate_size=int(cfg["intermediate_size"]),
                max_model_len=int(cfg.get("max_position_embeddings", 2048)),
                tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
                num_experts=int(cfg.get("num_local_experts", 0) or 0),
                num_experts_per_tok=int(cfg.get("num_experts_per_tok", 0) or 0),
            )
        except KeyError as exc:
            raise ValueError(f"config.json has no {exc.args[0]!r}, which a Llama-style model needs") from exc
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config.json has a non-integer shape field ({exc})") from exc
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes) -> "ModelConfig":
        return replace(self, **changes)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def linear_params(self) -> int:
        """Weights of the linear layers (q, k, v, o; gate, up, down, per expert in an MoE),
        the part a quantization method replaces."""
        h, d = self.hidden_size, self.head_dim
        attn = h * self.num_heads * d * 2 + h * self.num_kv_heads * d * 2
        mlp = 3 * h * self.intermediate_size * max(self.num_experts, 1)
        return self.num_layers * (attn + mlp)

    def other_params(self) -> int:
        """Embedding, LM head (unless tied), RMSNorm weights and an MoE's router: kept in
        the model dtype. The LM head is a ``ParallelLMHead``, not a quantized
        ``LinearBase``; Mixtral builds its router with ``quant_config=None``."""
        embed = self.vocab_size * self.hidden_size
        lm_head = 0 if self.tie_word_embeddings else embed
        norms = (2 * self.num_layers + 1) * self.hidden_size
        router = self.num_layers * self.hidden_size * self.num_experts
        return embed + lm_head + norms + router

    def num_params(self) -> int:
        return self.linear_params() + self.other_params()

    def kv_bytes_per_token(self, kv_dtype_bytes: int = 2) -> int:
        """One K and one V vector per KV head, in every layer."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * kv_dtype_bytes


# --------------------------------------------------------------------------- cache


@dataclass(frozen=True)
class CacheConfig:
    """The paged KV cache: ``num_blocks`` blocks of ``block_size`` tokens (block 0 is the
    null block). Upstream: vllm/config/cache.py:42@0decac0 (CacheConfig)."""

    block_size: int = 16
    num_blocks: int = 256
    enable_prefix_caching: bool = True
    block_pool_cls: str | type | None = None

    def __post_init__(self) -> None:
        _set(self, "block_size", check_int("block_size", self.block_size))
        _set(self, "num_blocks", check_int("num_blocks", self.num_blocks, minimum=2))
        _set(self, "enable_prefix_caching", check_bool("enable_prefix_caching", self.enable_prefix_caching))

    def get_block_pool_cls(self):
        from mini_vllm.block_pool import BlockPool

        spec = self.block_pool_cls or os.environ.get(BLOCK_POOL_CLS_ENV) or BlockPool
        return resolve_class(spec, "BlockPool", "block_pool_cls")


# --------------------------------------------------------------------------- scheduler


@dataclass(frozen=True)
class SchedulerConfig:
    """Upstream: vllm/config/scheduler.py:26@0decac0 (SchedulerConfig)."""

    max_num_seqs: int = 16
    max_num_batched_tokens: int = 2048
    max_model_len: int = 512
    long_prefill_token_threshold: int = 0
    enable_chunked_prefill: bool = True
    scheduler_cls: str | type | None = None

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens", "max_model_len"):
            _set(self, name, check_int(name, getattr(self, name)))
        _set(self, "long_prefill_token_threshold",
             check_int("long_prefill_token_threshold (0 = off)", self.long_prefill_token_threshold, minimum=0))
        _set(self, "enable_chunked_prefill", check_bool("enable_chunked_prefill", self.enable_chunked_prefill))
        if not self.enable_chunked_prefill and self.max_num_batched_tokens < self.max_model_len:
            # Without chunking a prompt must fit one step, or it would wait forever.
            raise ValueError(
                f"max_num_batched_tokens ({self.max_num_batched_tokens}) must be >= max_model_len "
                f"({self.max_model_len}) when chunked prefill is disabled"
            )

    def get_scheduler_cls(self):
        from mini_vllm.scheduler import Scheduler

        spec = self.scheduler_cls or os.environ.get(SCHEDULER_CLS_ENV) or Scheduler
        return resolve_class(spec, "Scheduler", "scheduler_cls")


# --------------------------------------------------------------------------- engine

MODEL_NAMES = ("tiny", "toy")


@dataclass(frozen=True)
class EngineConfig:
    """``model``: "tiny" (the seeded random ``TinyTransformer``, default), "toy" (a
    stateless stand-in for timing the scheduler) or a checkpoint directory.
    ``model_config`` overrides the tiny model's shape. ``seed`` seeds sampling
    (per-request generators); the tiny model's weights come from ``model_config.seed``.

    Build it composed (``EngineConfig(cache_config=..., scheduler_config=...)``) or flat
    with ``EngineConfig.create(block_size=4, max_num_seqs=2, ...)``, which is what
    ``LLM(**kwargs)`` does.
    """

    model: str = "tiny"
    model_config: ModelConfig | None = None
    cache_config: CacheConfig = field(default_factory=CacheConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.model, (str, os.PathLike)) or (
                str(self.model) not in MODEL_NAMES and not os.path.isdir(self.model)):
            raise ValueError(f"model must be 'tiny', 'toy' or a checkpoint directory, got {self.model!r}")
        _set(self, "model", str(self.model))
        _set(self, "seed", check_int("seed", self.seed, minimum=0))
        if self.model_config is not None and not isinstance(self.model_config, ModelConfig):
            raise ValueError(f"model_config must be a ModelConfig, got {type(self.model_config).__name__}")
        if not isinstance(self.cache_config, CacheConfig):
            raise ValueError(f"cache_config must be a CacheConfig, got {type(self.cache_config).__name__}")
        if not isinstance(self.scheduler_config, SchedulerConfig):
            raise ValueError(f"scheduler_config must be a SchedulerConfig, got {type(self.scheduler_config).__name__}")
        cache, sched = self.cache_config, self.scheduler_config
        # One request of max_model_len tokens must fit alone (block 0 is reserved);
        # otherwise it would preempt itself forever. Upstream checks the same in bytes:
        # vllm/v1/core/kv_cache_utils.py:794@0decac0 (check_enough_kv_cache_memory).
        needed = -(-sched.max_model_len // cache.block_size)
        if needed > cache.num_blocks - 1:
            raise ValueError(
                f"KV cache too small: one request of max_model_len={sched.max_model_len} tokens needs "
                f"{needed} blocks of {cache.block_size}, but only {cache.num_blocks - 1} are usable "
                f"(num_blocks={cache.num_blocks}, block 0 is the null block)"
            )
        if self.model_config is not None and self.model_config.max_model_len < sched.max_model_len:
            raise ValueError(f"model_config.max_model_len ({self.model_config.max_model_len}) must be >= "
                             f"max_model_len ({sched.max_model_len})")

    @classmethod
    def create(cls, **kwargs) -> "EngineConfig":
        """Build from flat keyword arguments, routing each to its config. An unknown
        name is an error that lists the known ones."""
        groups = {"cache_config": CacheConfig, "scheduler_config": SchedulerConfig}
        own = {f.name for f in fields(cls)}
        parts: dict[str, dict] = {g: {} for g in groups}
        top: dict = {}
        for key, value in kwargs.items():
            for group, config_cls in groups.items():
                if key in {f.name for f in fields(config_cls)}:
                    parts[group][key] = value
                    break
            else:
                if key not in own:
                    known = sorted(own | {f.name for c in groups.values() for f in fields(c)})
                    raise TypeError(f"unknown engine argument {key!r}; known: {', '.join(known)}")
                top[key] = value
        for group, config_cls in groups.items():
            if group in top and parts[group]:
                raise TypeError(f"pass either {group} or its fields ({', '.join(parts[group])}), not both")
            if group not in top:
                top[group] = config_cls(**parts[group])
        return cls(**top)

    # Flat read access, so engine code and learners write ``config.block_size``.
    @property
    def block_size(self) -> int:
        return self.cache_config.block_size

    @property
    def num_blocks(self) -> int:
        return self.cache_config.num_blocks

    @property
    def enable_prefix_caching(self) -> bool:
        return self.cache_config.enable_prefix_caching

    @property
    def max_model_len(self) -> int:
        return self.scheduler_config.max_model_len

    @property
    def max_num_seqs(self) -> int:
        return self.scheduler_config.max_num_seqs

    @property
    def max_num_batched_tokens(self) -> int:
        return self.scheduler_config.max_num_batched_tokens
