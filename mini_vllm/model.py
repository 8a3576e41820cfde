"""The models the engine runs.

``TinyTransformer`` is a real decoder-only transformer with seeded random weights
(RMSNorm, RoPE, grouped-query attention, SwiGLU MLP, the Llama layout of
vllm/model_executor/models/llama.py:253@0decac0 (LlamaDecoderLayer)). Its attention
writes each step's K/V into the paged cache through ``slot_mapping`` and reads the whole
context back through each request's block table, so a wrong table, a wrong slot, a stale
block or a bad prefix-cache hit changes the logits. That is what makes the engine
tests' "same output" claims mean something.

``ToyModel`` is the trivial alternative: logits from the last token and its position
only, no KV at all. It is fast, which is all it is for (scheduler benchmarks).
"""

from __future__ import annotations


import numpy as np

from mini_vllm.config import ModelConfig
from mini_vllm.attention import PagedBatch, dense_causal_attention, paged_attention, write_kv
from mini_vllm.request import Request, check_stop
from mini_vllm.sampler import Sampler, SamplingParams, seeded_generator


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def silu(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for very negative x; x/inf = -0 is right
        return x / (1.0 + np.exp(-x))


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    return x @ weight if bias is None else x @ weight + bias


def _mlp(h: np.ndarray, layer: dict) -> np.ndarray:
    return (silu(h @ layer["w_gate"]) * (h @ layer["w_up"])) @ layer["w_down"]


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Neox-style rotary embedding (rotate the two halves of each head); cos and sin
    are [T, 1, D/2], computed once per forward and shared by every layer's q and k."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


class TinyTransformer:
    """Float64 throughout, so batched, chunked and unbatched runs agree to rounding.

    A checkpoint loaded by ``mini_vllm.loader`` is a subclass with real weights, float32
    compute, the checkpoint's RMSNorm epsilon and optional q/k/v/o biases (Qwen2).
    """

    dtype = np.float64

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = c = config or ModelConfig()
        self.rms_norm_eps = c.rms_norm_eps
        rng = np.random.default_rng(c.seed)

        def w(fan_in: int, fan_out: int) -> np.ndarray:
            return rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)

        def norm_weight() -> np.ndarray:
            return 1.0 + 0.1 * rng.standard_normal(c.hidden_size)

        q_size, kv_size = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
        self.embed = rng.standard_normal((c.vocab_size, c.hidden_size))
        self.layers = [
            dict(
                attn_norm=norm_weight(), wq=w(c.hidden_size, q_size), wk=w(c.hidden_size, kv_size),
                wv=w(c.hidden_size, kv_size), wo=w(q_size, c.hidden_size), mlp_norm=norm_weight(),
                w_gate=w(c.hidden_size, c.intermediate_size), w_up=w(c.hidden_size, c.intermediate_size),
                w_down=w(c.intermediate_size, c.hidden_size),
            )
            for _ in range(c.num_layers)
        ]
        self.final_norm = norm_weight()
        self.lm_head = w(c.hidden_size, c.vocab_size)
        self.inv_freq = c.rope_theta ** (-np.arange(0, c.head_dim, 2) / c.head_dim)

    def make_kv_caches(self, num_blocks: int, block_size: int) -> list[np.ndarray]:
        """One [2, num_blocks, block_size, num_kv_heads, head_dim] array per layer."""
        c = self.config
        return [np.zeros((2, num_blocks, block_size, c.num_kv_heads, c.head_dim), dtype=self.dtype)
                for _ in range(c.num_layers)]

    def _rope_cos_sin(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cos and sin of every (position, frequency) angle, [T, 1, D/2]."""
        angles = positions[:, None] * self.inv_freq[None, :]
        return np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]

    def _hidden_states(self, input_ids: np.ndarray, positions: np.ndarray, attend) -> np.ndarray:
        """Run all layers; ``attend(layer_index, q, k, v) -> [T, H, D]`` is the only
        place tokens interact, exactly the seam of upstream's ``self.attn(q, k, v)``."""
        c, eps = self.config, self.rms_norm_eps
        num_tokens = len(input_ids)
        x = self.embed[input_ids]
        cos, sin = self._rope_cos_sin(positions)
        for i, layer in enumerate(self.layers):
            h = rms_norm(x, layer["attn_norm"], eps)
            q = _linear(h, layer["wq"], layer.get("bq")).reshape(num_tokens, c.num_heads, c.head_dim)
            k = _linear(h, layer["wk"], layer.get("bk")).reshape(num_tokens, c.num_kv_heads, c.head_dim)
            v = _linear(h, layer["wv"], layer.get("bv")).reshape(num_tokens, c.num_kv_heads, c.head_dim)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            x = x + _linear(attend(i, q, k, v).reshape(num_tokens, -1), layer["wo"], layer.get("bo"))
            x = x + _mlp(rms_norm(x, layer["mlp_norm"], eps), layer)
        return x

    def compute_logits(self, hidden: np.ndarray) -> np.ndarray:
        return rms_norm(hidden, self.final_norm, self.rms_norm_eps) @ self.lm_head

    def forward(
        self,
        input_ids,
        positions,
        slot_mapping,
        block_tables,
        query_start_loc,
        seq_lens,
        kv_caches: list[np.ndarray],
        attn_backend=paged_attention,
    ) -> np.ndarray:
        """One engine step over a flattened batch; returns logits [num_reqs, vocab] for
        each request's last scheduled token. ``attn_backend`` is the attention function
        the platform named (``paged_attention``'s signature).

        Per layer, every token's K/V is written first and only then does each request
        attend, so a request admitted this step can read blocks another request fills
        in the same step (a same-step prefix-cache hit), as on the GPU.
        """
        c = self.config
        input_ids = np.asarray(input_ids, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        qsl = np.asarray(query_start_loc, dtype=np.int64)
        seq_lens = np.asarray(seq_lens, dtype=np.int64)
        num_reqs = len(seq_lens)
        if not (input_ids.shape == positions.shape == np.shape(slot_mapping)) or input_ids.ndim != 1:
            raise ValueError("input_ids, positions and slot_mapping must be 1-D and the same length")
        if qsl.shape != (num_reqs + 1,) or qsl[0] != 0 or qsl[-1] != len(input_ids) or np.any(np.diff(qsl) <= 0):
            raise ValueError(f"query_start_loc {qsl.tolist()} must rise from 0 to {len(input_ids)} in {num_reqs} steps")
        if len(block_tables) != num_reqs or len(kv_caches) != c.num_layers:
            raise ValueError("need one block table per request and one cache per layer")
        if input_ids.size and (input_ids.min() < 0 or input_ids.max() >= c.vocab_size):
            raise ValueError(f"token ids must be in [0, {c.vocab_size})")
        if positions.size and (positions.min() < 0 or positions.max() >= c.max_model_len):
            raise ValueError(f"positions must be in [0, {c.max_model_len})")

        batch = PagedBatch(block_tables, qsl, seq_lens, kv_caches[0])

        def attend(layer: int, q, k, v):
            write_kv(kv_caches[layer], slot_mapping, k, v)
            out = np.empty_like(q)
            if attn_backend is paged_attention:
                # The engine's own kernel: every decode in one batched pass, prefill chunks one by one.
                batch.decode_attention(q, kv_caches[layer], out)
                rows = batch.prefills
            else:
                # A platform's own kernel (phase 17) sees every request, one call each.
                rows = [(r, qsl[r], qsl[r + 1]) for r in range(num_reqs)]
            for r, s, e in rows:
                out[s:e] = attn_backend(q[s:e], kv_caches[layer], block_tables[r], int(seq_lens[r]),
                                        int(seq_lens[r] - (e - s)))
            return out

        hidden = self._hidden_states(input_ids, positions, attend)
        return self.compute_logits(hidden[qsl[1:] - 1])

    def forward_dense(self, token_ids, start_pos: int, kv_state: list[list[np.ndarray]]) -> np.ndarray:
        """Unpaged forward for the reference: ``kv_state[layer] = [k, v]`` holds the
        contiguous K/V of positions 0..start_pos-1 and is extended in place. Returns the
        logits of the last token."""
        token_ids = np.asarray(token_ids, dtype=np.int64)
        positions = start_pos + np.arange(len(token_ids))

        def attend(layer: int, q, k, v):
            kv_state[layer][0] = np.concatenate([kv_state[layer][0], k])
            kv_state[layer][1] = np.concatenate([kv_state[layer][1], v])
            return dense_causal_attention(q, kv_state[layer][0], kv_state[layer][1], start_pos=start_pos)

        return self.compute_logits(self._hidden_states(token_ids, positions, attend)[-1])

    def empty_kv_state(self) -> list[list[np.ndarray]]:
        c = self.config
        return [[np.zeros((0, c.num_kv_heads, c.head_dim), dtype=self.dtype) for _ in range(2)]
                for _ in range(c.num_layers)]


class ToyModel:
    """Logits from (last token, position) alone; ignores every earlier token, so it
    cannot notice KV-cache mistakes. Use it to time the scheduler, not to test it.

    It keeps the engine's model contract (``make_kv_caches``, ``forward``,
    ``forward_dense``, ``empty_kv_state``) so the engine never asks which model it runs;
    it simply has no cache to write.
    """

    dtype = np.float64

    def __init__(self, config: ModelConfig | None = None, dim: int = 16) -> None:
        self.config = c = config or ModelConfig()
        rng = np.random.default_rng(c.seed)
        self.token_emb = rng.standard_normal((c.vocab_size, dim))
        self.pos_freq = rng.uniform(0.01, 1.0, dim)
        self.out = rng.standard_normal((dim, c.vocab_size)) / np.sqrt(dim)

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def make_kv_caches(self, num_blocks: int, block_size: int) -> list[np.ndarray]:
        return []

    def _logits(self, last_tokens: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if last_tokens.size and (last_tokens.min() < 0 or last_tokens.max() >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size})")
        return (self.token_emb[last_tokens] + np.sin(positions[:, None].astype(np.float64) * self.pos_freq)) @ self.out

    def forward(self, input_ids, positions, slot_mapping, block_tables, query_start_loc, seq_lens,
                kv_caches, attn_backend=None) -> np.ndarray:
        """Same arguments as ``TinyTransformer.forward``; reads only each request's last token."""
        input_ids = np.asarray(input_ids, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        if input_ids.shape != positions.shape or input_ids.ndim != 1:
            raise ValueError("input_ids and positions must be 1-D and the same length")
        last = np.asarray(query_start_loc, dtype=np.int64)[1:] - 1
        return self._logits(input_ids[last], positions[last])

    def forward_dense(self, token_ids, start_pos: int, kv_state) -> np.ndarray:
        token_ids = np.asarray(token_ids, dtype=np.int64)
        return self._logits(token_ids[-1:], np.array([start_pos + len(token_ids) - 1]))[0]

    def empty_kv_state(self) -> list:
        return []


def reference_generate(
    model,
    prompt_ids,
    max_tokens: int | None = None,
    params: SamplingParams | None = None,
    *,
    generator: np.random.Generator | None = None,
    eos_token_id: int | None = None,
    max_model_len: int | None = None,
) -> list[int]:
    """The unbatched, unpaged reference: one request, contiguous K/V, the prompt in one
    chunk, then one token per step. Stops by the engine's rules (``check_stop``).

    To compare with the engine, pass the request's own generator
    (``sampler.make_generator(params, engine_seed, request_id)``) and the tokenizer's
    EOS id; with greedy params neither matters except EOS.
    """
    if params is None:
        params = SamplingParams(temperature=0.0, max_tokens=16 if max_tokens is None else max_tokens)
    elif max_tokens is not None:
        params = params.replace(max_tokens=max_tokens)
    if generator is None:
        generator = np.random.default_rng() if params.seed is None else seeded_generator(params.seed)
    if max_model_len is None:
        max_model_len = getattr(getattr(model, "config", None), "max_model_len", None)
    request = Request("reference", list(prompt_ids), params, eos_token_id=eos_token_id)
    sampler = Sampler()
    kv_state = model.empty_kv_state()
    pending, start = list(request.prompt_token_ids), 0
    while True:
        logits = model.forward_dense(pending, start, kv_state)
        token = sampler.sample(logits, params, generator, request.prompt_token_ids, request.output_token_ids,
                               eos_token_id)
        request.append_output_token_ids(token)
        if check_stop(request, max_model_len):
            return list(request.output_token_ids)
        start += len(pending)
        pending = [token]


MODEL_REGISTRY = {"tiny": TinyTransformer, "toy": ToyModel}
"""Built-in models by name; anything else is a checkpoint directory (``mini_vllm.loader``)."""


def get_model(name: str, model_config: ModelConfig | None = None, max_model_len: int | None = None):
    """Build the model ``name`` names: a registry entry, or a checkpoint directory.

    Upstream resolves an architecture through its model registry the same way:
    vllm/model_executor/model_loader/utils.py:214@0decac0 (get_model_architecture).
    """
    if name in MODEL_REGISTRY:
        config = model_config or ModelConfig(max_model_len=max_model_len or ModelConfig.max_model_len)
        return MODEL_REGISTRY[name](config)
    from mini_vllm.loader import load_model

    return load_model(name)
