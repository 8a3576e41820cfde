"""Load a Hugging Face Llama-family checkpoint (Llama, Qwen2, SmolLM) into mini_vllm.

A checkpoint directory holds ``config.json``, one or more ``*.safetensors`` files and a
``tokenizer.json``. ``load_model(path)`` returns a ``LlamaForCausalLM``: the same
``TinyTransformer`` forward the engine already runs (paged KV writes through
``slot_mapping``, attention through each request's block table), with the checkpoint's
weights, float32 compute, its RMSNorm epsilon, its RoPE base and scaling, and the q/k/v
biases Qwen2 adds. The scheduler, KV-cache manager, prefix cache and preemption do not
know the difference.

Names. Hugging Face stores ``nn.Linear`` weights as [out_features, in_features]; mini_vllm
multiplies ``x @ W`` with W as [in, out], so every projection is transposed, and copied
into that order once at load time: OpenBLAS multiplies a few rows (a decode batch) by a
row-major [in, out] matrix faster than by a transposed view.
Upstream vLLM instead *fuses* q/k/v into one ``qkv_proj`` and gate/up into one
``gate_up_proj`` while loading, with a table of (fused name, checkpoint name, shard):
vllm/model_executor/models/llama.py:437-444@0decac0 (LlamaModel.load_weights). mini_vllm
keeps the projections separate (no tensor parallelism, nothing to fuse for), so its table
is one-to-one.

The optional packages ``safetensors`` and ``tokenizers`` (``pip install -e .[models]``)
are imported inside the functions that need them: ``import mini_vllm`` stays numpy-only.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from mini_vllm.config import ModelConfig
from mini_vllm.model import TinyTransformer

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")

# Checkpoint name inside ``model.layers.{i}.`` -> key in a TinyTransformer layer dict.
LAYER_WEIGHTS = {
    "input_layernorm.weight": "attn_norm",
    "self_attn.q_proj.weight": "wq",
    "self_attn.k_proj.weight": "wk",
    "self_attn.v_proj.weight": "wv",
    "self_attn.o_proj.weight": "wo",
    "post_attention_layernorm.weight": "mlp_norm",
    "mlp.gate_proj.weight": "w_gate",
    "mlp.up_proj.weight": "w_up",
    "mlp.down_proj.weight": "w_down",
}
QKV_BIASES = {"self_attn.q_proj.bias": "bq", "self_attn.k_proj.bias": "bk", "self_attn.v_proj.bias": "bv"}
O_BIAS = {"self_attn.o_proj.bias": "bo"}
# Buffers some exporters save that are recomputed from the config, never loaded; upstream
# skips them too: vllm/model_executor/models/llama.py:448@0decac0 ("rotary_emb.inv_freq").
IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "rotary_emb.cos_cached", "rotary_emb.sin_cached")


def _import_optional(name: str):
    try:
        return __import__(name)
    except ImportError as exc:
        raise ImportError(
            f"loading a Hugging Face checkpoint needs the '{name}' package: pip install -e '.[models]'"
        ) from exc


def _first_id(value, field: str = "token id") -> int | None:
    """A config's BOS/EOS entry: an int, a list of ints (the first is used) or null."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field} must be an int >= 0, a list of them, or null; got {value!r}")
    return value


def config_from_hf(cfg: dict) -> ModelConfig:
    """Translate a ``config.json`` dict. Reads both RoPE spellings: transformers >= 5
    writes ``rope_parameters`` ({rope_theta, rope_type, ...}); older checkpoints have a
    top-level ``rope_theta`` and an optional ``rope_scaling`` dict."""
    model_type = cfg.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"model_type {model_type!r} is not supported; mini_vllm loads {', '.join(SUPPORTED_MODEL_TYPES)}")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {cfg['hidden_act']!r} is not supported (SwiGLU needs silu)")
    if cfg.get("mlp_bias"):
        raise ValueError("mlp_bias=True is not supported")
    if model_type == "qwen2" and cfg.get("use_sliding_window"):
        raise ValueError("Qwen2 sliding-window attention is not supported")
    rope = dict(cfg.get("rope_parameters") or {})
    legacy = cfg.get("rope_scaling") or {}
    rope_theta = float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0)))
    rope_type = rope.get("rope_type") or legacy.get("rope_type") or legacy.get("type") or "default"
    if rope_type == "llama3":
        src = rope if rope.get("rope_type") == "llama3" else legacy
        rope_scaling = {k: float(src[k]) for k in ("factor", "low_freq_factor", "high_freq_factor",
                                                    "original_max_position_embeddings")}
    elif rope_type == "default":
        rope_scaling = None
    else:
        raise ValueError(f"RoPE type {rope_type!r} is not supported (default and llama3 are)")
    if rope.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ValueError("partial rotary embeddings are not supported")
    attention_bias = bool(cfg.get("attention_bias", False))
    return ModelConfig.from_hf_config(
        cfg,
        rope_theta=rope_theta,
        model_type=model_type,
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        # Qwen2 always has q/k/v bias:
        # vllm/model_executor/models/qwen2.py:159-164@0decac0 ("self.qkv_proj = QKVParallelLinear(").
        # Llama only with attention_bias, which then also covers o_proj:
        # vllm/model_executor/models/llama.py:274@0decac0 ("bias_o_proj = attention_bias").
        qkv_bias=model_type == "qwen2" or attention_bias,
        o_bias=model_type == "llama" and attention_bias,
        rope_scaling=rope_scaling,
        bos_token_id=_first_id(cfg.get("bos_token_id"), "bos_token_id"),
        eos_token_id=_first_id(cfg.get("eos_token_id"), "eos_token_id"),
    )


def rope_inv_freq(config: ModelConfig) -> np.ndarray:
    """Inverse frequencies, float32 as transformers computes them. llama3 scaling leaves
    short wavelengths alone, divides long ones by ``factor`` and blends in between; the
    same piecewise rule as
    vllm/model_executor/layers/rotary_embedding/llama3_rope.py:33@0decac0 (Llama3RotaryEmbedding._compute_inv_freq)."""
    dim = config.head_dim
    exponent = np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)
    inv_freq = np.float32(1.0) / (np.float32(config.rope_theta) ** exponent)
    s = config.rope_scaling
    if s is None:
        return inv_freq
    factor, low, high, old_len = (s["factor"], s["low_freq_factor"], s["high_freq_factor"],
                                  s["original_max_position_embeddings"])
    wavelen = np.float32(2 * math.pi) / inv_freq
    scaled = np.where(wavelen > old_len / low, inv_freq / np.float32(factor), inv_freq)
    smooth = (np.float32(old_len) / wavelen - np.float32(low)) / np.float32(high - low)
    blended = (1 - smooth) * scaled / np.float32(factor) + smooth * scaled
    medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
    return np.where(medium, blended, scaled).astype(np.float32)


# ---------------------------------------------------------------------------- safetensors

_NUMPY_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
                 "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


MAX_HEADER_BYTES = 100 << 20  # the safetensors format's own cap on the JSON header


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict, int]:
    """A .safetensors file is an 8-byte little-endian header length, a JSON header
    ({name: {dtype, shape, data_offsets}}), then the raw bytes. Returns (header, offset
    of the data section). Nothing read from the file is trusted: the header length, the
    JSON and every tensor's byte range are checked against the file's size, and an error
    names the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size < 8:
            raise ValueError(f"{path}: {size} bytes is too short for a safetensors file (8-byte header length first)")
        n = int.from_bytes(f.read(8), "little")
        if n > min(size - 8, MAX_HEADER_BYTES):
            raise ValueError(f"{path}: header length {n} is larger than the file ({size} bytes) allows: "
                             "truncated or not a safetensors file")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: the safetensors header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the safetensors header must be a JSON object")
    header.pop("__metadata__", None)
    data_size = size - 8 - n
    for name, info in header.items():
        try:
            begin, end = (int(x) for x in info["data_offsets"])
            shape = [int(d) for d in info["shape"]]
            dtype = info["dtype"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: tensor {name!r} needs dtype, shape and data_offsets ({exc})") from exc
        if not 0 <= begin <= end <= data_size:
            raise ValueError(f"{path}: tensor {name!r} spans bytes {begin}..{end}, but the data section has "
                             f"{data_size}: truncated file")
        itemsize = {"BF16": 2}.get(dtype) or (np.dtype(_NUMPY_DTYPES[dtype]).itemsize if dtype in _NUMPY_DTYPES else None)
        if itemsize is not None and (end - begin) != itemsize * int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name!r} of shape {shape} and dtype {dtype} needs "
                             f"{itemsize * int(np.prod(shape, dtype=np.int64))} bytes, its range holds {end - begin}")
    return header, 8 + n


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the top 16 bits of a float32: shift each uint16 into the high half."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of one file as float32 numpy arrays (integer tensors keep their type).

    ``safetensors``' numpy API reads every dtype numpy has; numpy has no bfloat16, so
    BF16 tensors are read as raw uint16 and upcast by ``bf16_to_f32`` (exact).
    """
    safetensors = _import_optional("safetensors")
    import safetensors.numpy  # noqa: F401  (registers the numpy framework)

    header, data_start = read_safetensors_header(path)
    out: dict[str, np.ndarray] = {}
    with safetensors.safe_open(str(path), framework="np") as f, open(path, "rb") as raw:
        for name, info in header.items():
            dtype = info["dtype"]
            if dtype == "BF16":
                begin, end = info["data_offsets"]
                raw.seek(data_start + begin)
                bits = np.frombuffer(raw.read(end - begin), dtype="<u2").reshape(info["shape"])
                out[name] = bf16_to_f32(bits)
            elif dtype in _NUMPY_DTYPES:
                t = f.get_tensor(name)
                out[name] = t.astype(np.float32) if np.issubdtype(t.dtype, np.floating) else t
            else:
                raise ValueError(f"{path}: tensor {name} has dtype {dtype}, which mini_vllm does not read")
    return out


def checkpoint_files(path: str | os.PathLike) -> list[Path]:
    """The weight files of a checkpoint directory: the shards named by
    ``model.safetensors.index.json`` if present, else every ``*.safetensors``."""
    path = Path(path)
    index = path / "model.safetensors.index.json"
    if index.exists():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{index}: needs a JSON object with a 'weight_map' of tensor -> file ({exc})") from exc
        missing = [n for n in names if not (path / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{index} names shards that are not in {path}: {missing[:3]}")
        return [path / n for n in names]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors file in {path}")
    return files


# ---------------------------------------------------------------------------- the model

class LlamaForCausalLM(TinyTransformer):
    """A real checkpoint behind TinyTransformer's forward: RMSNorm -> q/k/v (+ bias for
    Qwen2) -> RoPE -> paged attention -> o_proj, RMSNorm -> SwiGLU, per layer; final
    norm; lm_head (or the embedding, transposed, when tied). Float32 throughout, so
    logits agree with transformers' float32 forward to ~1e-6 on small models."""

    dtype = np.float32

    def __init__(self, config: ModelConfig, weights: dict[str, np.ndarray]) -> None:
        self.config = c = config
        self.rms_norm_eps = c.rms_norm_eps
        remaining = {k: v for k, v in weights.items() if not k.endswith(IGNORED_SUFFIXES)}

        def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
            if name not in remaining:
                raise ValueError(f"checkpoint has no tensor {name!r}")
            t = remaining.pop(name)
            if t.shape != shape:
                raise ValueError(f"{name}: shape {t.shape}, config implies {shape}")
            return t.astype(np.float32, copy=False)

        q, kv, h, i = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.hidden_size, c.intermediate_size
        shapes = {"attn_norm": (h,), "mlp_norm": (h,), "wq": (q, h), "wk": (kv, h), "wv": (kv, h), "wo": (h, q),
                  "w_gate": (i, h), "w_up": (i, h), "w_down": (h, i), "bq": (q,), "bk": (kv,), "bv": (kv,), "bo": (h,)}
        names = dict(LAYER_WEIGHTS)
        if c.qkv_bias:
            names.update(QKV_BIASES)
        if c.o_bias:
            names.update(O_BIAS)
        self.embed = take("model.embed_tokens.weight", (c.vocab_size, h))
        self.layers = []
        for n in range(c.num_layers):
            layer = {}
            for hf_name, key in names.items():
                t = take(f"model.layers.{n}.{hf_name}", shapes[key])
                layer[key] = np.ascontiguousarray(t.T) if t.ndim == 2 else t  # [out, in] -> [in, out]
            self.layers.append(layer)
        self.final_norm = take("model.norm.weight", (h,))
        if c.tie_word_embeddings:
            # Upstream drops a saved lm_head.weight when tied:
            # vllm/model_executor/models/llama.py:584-587@0decac0 (LlamaForCausalLM.load_weights).
            # One copy serves both: lm_head [hidden, vocab] row-major for the matmul, and the
            # embedding is its transposed view (a row gather of T tokens, cheap either way).
            remaining.pop("lm_head.weight", None)
            self.lm_head = np.ascontiguousarray(self.embed.T)
            self.embed = self.lm_head.T
        else:
            self.lm_head = np.ascontiguousarray(take("lm_head.weight", (c.vocab_size, h)).T)
        if remaining:
            extra = sorted(remaining)
            raise ValueError(f"{len(extra)} checkpoint tensors not used, e.g. {extra[:3]}")
        self.inv_freq = rope_inv_freq(c)

    def _rope_cos_sin(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TinyTransformer's angles, in float32 as transformers computes them
        (position * inv_freq, then cos/sin)."""
        angles = positions.astype(np.float32)[:, None] * self.inv_freq[None, :]
        return np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]

    @property
    def num_parameters(self) -> int:
        arrays = [self.embed, self.final_norm] + [w for layer in self.layers for w in layer.values()]
        if not self.config.tie_word_embeddings:
            arrays.append(self.lm_head)
        return sum(a.size for a in arrays)


def load_config(path: str | os.PathLike) -> ModelConfig:
    config_file = Path(path) / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{path} has no config.json: not a Hugging Face checkpoint directory")
    try:
        cfg = json.loads(config_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{config_file}: not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict):
        raise ValueError(f"{config_file}: must hold a JSON object")
    try:
        return config_from_hf(cfg)
    except ValueError as exc:
        raise ValueError(f"{config_file}: {exc}") from exc


def load_model(path: str | os.PathLike) -> LlamaForCausalLM:
    """Read config.json and every weight file of a checkpoint directory."""
    config = load_config(path)
    weights: dict[str, np.ndarray] = {}
    for f in checkpoint_files(path):
        weights.update(read_safetensors(f))
    try:
        return LlamaForCausalLM(config, weights)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
