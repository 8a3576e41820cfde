"""Bad input, one row per case: each must raise the stated exception with a message that
names the field (or the file) and says what is allowed. No raw traceback from inside
numpy, json or the file system, and no silent coercion (a float id truncated, "no"
taken as True)."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mini_vllm import LLMEngine, Sampler, SamplingParams
from mini_vllm.cli import main
from mini_vllm.config import CacheConfig, EngineConfig, ModelConfig, SchedulerConfig
from mini_vllm.kv_cache import KVCacheManager

TESTDATA = Path(__file__).parent / "testdata"
GREEDY = SamplingParams(temperature=0.0, max_tokens=2)

# ------------------------------------------------------------------ SamplingParams
SAMPLING = [
    ("temperature<0", dict(temperature=-1.0), "temperature", "non-negative"),
    ("temperature-str", dict(temperature="0.5"), "temperature", "number"),
    ("temperature-nan", dict(temperature=float("nan")), "temperature", "number"),
    ("temperature-inf", dict(temperature=float("inf")), "temperature", "number"),
    ("top_k<-1", dict(top_k=-2), "top_k", "-1"),
    ("top_k-float", dict(top_k=1.5), "top_k", "int"),
    ("top_k-bool", dict(top_k=True), "top_k", "int"),
    ("top_p=0", dict(top_p=0.0), "top_p", r"\(0, 1\]"),
    ("top_p>1", dict(top_p=1.5), "top_p", r"\(0, 1\]"),
    ("top_p-nan", dict(top_p=float("nan")), "top_p", r"\(0, 1\]"),
    ("min_p<0", dict(min_p=-0.1), "min_p", r"\[0, 1\]"),
    ("min_p>1", dict(min_p=1.1), "min_p", r"\[0, 1\]"),
    ("seed-float", dict(seed=1.5), "seed", "int"),
    ("seed-str", dict(seed="7"), "seed", "int"),
    ("max_tokens=0", dict(max_tokens=0), "max_tokens", ">= 1"),
    ("max_tokens-float", dict(max_tokens=1.5), "max_tokens", "int"),
    ("max_tokens-bool", dict(max_tokens=True), "max_tokens", "int"),
    ("stop<0", dict(stop_token_ids=[-1]), "stop_token_ids", "non-negative"),
    ("stop-str", dict(stop_token_ids=["a"]), "stop_token_ids", "ints"),
    ("stop-float", dict(stop_token_ids=[1.0]), "stop_token_ids", "ints"),
    ("ignore_eos-str", dict(ignore_eos="yes"), "ignore_eos", "bool"),
]


@pytest.mark.parametrize("case, kwargs, field, allowed", SAMPLING, ids=[c[0] for c in SAMPLING])
def test_sampling_params(case, kwargs, field, allowed):
    with pytest.raises(ValueError, match=field) as exc:
        SamplingParams(**kwargs)
    assert re.search(allowed, str(exc.value)), f"{case}: message should say what is allowed: {exc.value}"


# ------------------------------------------------------------------ prompts and ids
PROMPTS = [
    ("empty-str", "", ValueError, "empty"),
    ("empty-list", [], ValueError, "empty"),
    ("float-id", [1, 2.5], ValueError, r"\[1\] must be an int"),
    ("str-id", [1, "a"], ValueError, r"\[1\] must be an int"),
    ("bool-id", [True, 2], ValueError, r"\[0\] must be an int"),
    ("negative-id", [3, -1], ValueError, r"\[1\] must be >= 0"),
    ("out-of-vocab", [1, 999], ValueError, r"\[0, 257\)"),
    ("2-d-array", np.array([[1, 2]]), ValueError, "1-D"),
    ("float-array", np.array([1.0, 2.0]), ValueError, "must be an int"),
    ("int", 5, ValueError, "sequence of ints"),
    ("none", None, ValueError, "sequence of ints"),
    ("bytes", b"hi", ValueError, "sequence of ints"),
    ("too-long", [5] * 64, ValueError, "max_model_len=64"),
]


@pytest.mark.parametrize("case, prompt, exc_type, message", PROMPTS, ids=[c[0] for c in PROMPTS])
def test_prompts(case, prompt, exc_type, message):
    engine = LLMEngine(block_size=4, num_blocks=64, max_model_len=64)
    with pytest.raises(exc_type, match=message):
        engine.add_request(prompt, GREEDY)
    assert not engine.has_unfinished_requests(), f"{case}: a refused prompt must leave nothing queued"


def test_numpy_int_prompts_are_accepted_as_they_are():
    engine = LLMEngine(block_size=4, num_blocks=64, max_model_len=64)
    out = engine.generate(np.array([104, 105]), GREEDY)[0]
    assert out.prompt_token_ids == [104, 105]


IDS = [
    ("int-id", dict(request_id=5), ValueError, "request_id must be a non-empty str"),
    ("empty-id", dict(request_id=""), ValueError, "request_id must be a non-empty str"),
    ("dict-params", dict(params={"temperature": 0}), TypeError, "params must be SamplingParams"),
]


@pytest.mark.parametrize("case, kwargs, exc_type, message", IDS, ids=[c[0] for c in IDS])
def test_request_ids_and_params(case, kwargs, exc_type, message):
    engine = LLMEngine(block_size=4, num_blocks=64, max_model_len=64)
    kwargs = dict(dict(params=GREEDY), **kwargs)
    with pytest.raises(exc_type, match=message):
        engine.add_request("hi", kwargs["params"], request_id=kwargs.get("request_id"))


def test_duplicate_live_id_and_unknown_abort():
    engine = LLMEngine(block_size=4, num_blocks=64, max_model_len=64)
    engine.add_request("hi", GREEDY, request_id="a")
    with pytest.raises(ValueError, match="duplicate request id 'a'"):
        engine.add_request("ho", GREEDY, request_id="a")
    with pytest.raises(KeyError, match="unknown request id 'zz'"):
        engine.abort_request("zz")


# ------------------------------------------------------------------ logits
LOGITS = [
    ("nan-greedy", [0.0, float("nan"), 1.0], 0.0, "NaN at token ids \\[1\\]"),
    ("nan-sampled", [0.0, float("nan"), 1.0], 1.0, "NaN"),
    ("posinf-sampled", [0.0, float("inf"), 1.0], 1.0, r"\+inf at token ids \[1\]"),
    ("posinf-greedy", [float("inf"), 0.0], 0.0, r"\+inf"),
    ("all-neginf", [-np.inf, -np.inf], 1.0, "every logit is -inf"),
    ("two-d", [[0.0, 1.0]], 0.0, "one row of logits"),
]


@pytest.mark.parametrize("case, row, temperature, message", LOGITS, ids=[c[0] for c in LOGITS])
def test_logits_that_cannot_be_sampled(case, row, temperature, message):
    with pytest.raises(ValueError, match=message):
        Sampler().sample(np.array(row), SamplingParams(temperature=temperature), np.random.default_rng(0))


# ------------------------------------------------------------------ engine config
CONFIG = [
    ("block_size=0", dict(block_size=0), ValueError, "block_size must be an int >= 1"),
    ("block_size-bool", dict(block_size=True), ValueError, "block_size must be an int"),
    ("block_size-float", dict(block_size=4.0), ValueError, "block_size must be an int"),
    ("block_size-str", dict(block_size="4"), ValueError, "block_size must be an int"),
    ("num_blocks=1", dict(num_blocks=1), ValueError, "num_blocks must be an int >= 2"),
    ("max_model_len=0", dict(max_model_len=0), ValueError, "max_model_len must be an int >= 1"),
    ("max_num_seqs<0", dict(max_num_seqs=-1), ValueError, "max_num_seqs must be an int >= 1"),
    ("budget-str", dict(max_num_batched_tokens="8"), ValueError, "max_num_batched_tokens must be an int"),
    ("threshold<0", dict(long_prefill_token_threshold=-1), ValueError, "long_prefill_token_threshold"),
    ("caching-str", dict(enable_prefix_caching="no"), ValueError, "enable_prefix_caching must be True or False"),
    ("caching-int", dict(enable_prefix_caching=1), ValueError, "enable_prefix_caching must be True or False"),
    ("chunked-none", dict(enable_chunked_prefill=None), ValueError, "enable_chunked_prefill must be True or False"),
    ("seed-str", dict(seed="abc"), ValueError, "seed must be an int >= 0"),
    ("seed<0", dict(seed=-1), ValueError, "seed must be an int >= 0"),
    ("seed-float", dict(seed=0.0), ValueError, "seed must be an int >= 0"),
    ("model-unknown", dict(model="nope"), ValueError, "model must be 'tiny', 'toy' or a checkpoint directory"),
    ("unknown-kwarg", dict(blocksize=4), TypeError, "unknown engine argument 'blocksize'"),
    ("cache-too-small", dict(block_size=16, num_blocks=4, max_model_len=512), ValueError, "KV cache too small"),
    ("no-chunking-budget", dict(enable_chunked_prefill=False, max_num_batched_tokens=8, max_model_len=64),
     ValueError, "max_num_batched_tokens .* must be >= max_model_len"),
    ("scheduler-cls-bad", dict(scheduler_cls="nomodule"), ValueError, "scheduler_cls must name a module and a class"),
    ("block-pool-cls-int", dict(block_pool_cls=5), ValueError, "block_pool_cls must be a class"),
    ("model-config-type", dict(model_config={"hidden_size": 8}), ValueError, "model_config must be a ModelConfig"),
    ("model-config-short", dict(model_config=ModelConfig(max_model_len=8), max_model_len=64), ValueError,
     r"model_config.max_model_len \(8\) must be >= max_model_len \(64\)"),
    ("history-size", dict(history_size=0), ValueError, "history_size must be an int >= 1"),
]


@pytest.mark.parametrize("case, kwargs, exc_type, message", CONFIG, ids=[c[0] for c in CONFIG])
def test_engine_config(case, kwargs, exc_type, message):
    with pytest.raises(exc_type, match=message):
        LLMEngine(**kwargs)


MODEL_CONFIG = [
    ("heads-not-multiple", dict(num_heads=4, num_kv_heads=3), "multiple of num_kv_heads"),
    ("odd-head-dim", dict(head_dim=7), "head_dim must be even"),
    ("experts-top-k", dict(num_experts=4, num_experts_per_tok=5), r"num_experts_per_tok must be in \[1, num_experts=4\]"),
    ("hidden-float", dict(hidden_size=32.0), "model_config.hidden_size must be an int"),
]


@pytest.mark.parametrize("case, kwargs, message", MODEL_CONFIG, ids=[c[0] for c in MODEL_CONFIG])
def test_model_config(case, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_kv_cache_manager_refuses_a_bool_block_size():
    with pytest.raises(ValueError, match="block_size must be an int"):
        KVCacheManager(16, True)
    with pytest.raises(ValueError, match="enable_caching must be True or False"):
        KVCacheManager(16, 4, "yes")


def test_configs_built_directly_validate_too():
    with pytest.raises(ValueError, match="block_size"):
        CacheConfig(block_size=0)
    with pytest.raises(ValueError, match="max_num_seqs"):
        SchedulerConfig(max_num_seqs=0)
    with pytest.raises(ValueError, match="cache_config must be a CacheConfig"):
        EngineConfig(cache_config={"block_size": 4})


# ------------------------------------------------------------------ checkpoint files
def _checkpoint(tmp_path):
    d = tmp_path / "ckpt"
    shutil.copytree(TESTDATA / "tiny-llama", d)
    return d


def _edit_config(d, **changes):
    cfg = json.loads((d / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (d / "config.json").write_text(json.dumps(cfg))


def _bad_header_len(d):
    f = d / "model.safetensors"
    f.write_bytes((10**9).to_bytes(8, "little") + f.read_bytes()[8:])


def _truncate(d):
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])


LOADER = [
    ("no-config", lambda d: (d / "config.json").unlink(), FileNotFoundError, "has no config.json"),
    ("config-garbage", lambda d: (d / "config.json").write_text("{not json"), ValueError, r"config.json: not valid JSON"),
    ("config-list", lambda d: (d / "config.json").write_text("[]"), ValueError, "config.json: must hold a JSON object"),
    ("config-no-hidden", lambda d: _edit_config(d, hidden_size=None), ValueError, r"config.json.*'hidden_size'"),
    ("config-model-type", lambda d: _edit_config(d, model_type="gpt2"), ValueError, r"config.json.*model_type 'gpt2'"),
    ("config-eos-str", lambda d: _edit_config(d, eos_token_id="abc"), ValueError, r"config.json.*eos_token_id must be an int"),
    ("weights-4-bytes", lambda d: (d / "model.safetensors").write_bytes(b"abcd"), ValueError, r"model.safetensors: 4 bytes"),
    ("weights-header-len", _bad_header_len, ValueError, r"model.safetensors: header length 1000000000"),
    ("weights-header-json", lambda d: (d / "model.safetensors").write_bytes((4).to_bytes(8, "little") + b"{{{{"),
     ValueError, r"model.safetensors: the safetensors header is not valid JSON"),
    ("weights-truncated", _truncate, ValueError, r"model.safetensors: tensor .* truncated file"),
    ("no-weights", lambda d: (d / "model.safetensors").unlink(), FileNotFoundError, r"no \*.safetensors file"),
    ("index-missing-shard", lambda d: (d / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001.safetensors"}})), FileNotFoundError, "names shards that are not in"),
    ("index-garbage", lambda d: (d / "model.safetensors.index.json").write_text("[1]"), ValueError, "weight_map"),
    ("tokenizer-garbage", lambda d: (d / "tokenizer.json").write_text("{}"), ValueError, r"tokenizer.json: not a tokenizer"),
]


@pytest.mark.parametrize("case, damage, exc_type, message", LOADER, ids=[c[0] for c in LOADER])
def test_checkpoint_files(case, damage, exc_type, message, tmp_path):
    pytest.importorskip("safetensors", reason="the models extra (safetensors, tokenizers) is not installed")
    pytest.importorskip("tokenizers", reason="the models extra (safetensors, tokenizers) is not installed")
    d = _checkpoint(tmp_path)
    damage(d)
    with pytest.raises(exc_type, match=message):
        LLMEngine(model=str(d), max_model_len=64, num_blocks=64)


def test_an_empty_eos_list_means_no_eos(tmp_path):
    pytest.importorskip("safetensors", reason="the models extra is not installed")
    pytest.importorskip("tokenizers", reason="the models extra is not installed")
    d = _checkpoint(tmp_path)
    _edit_config(d, eos_token_id=[])
    engine = LLMEngine(model=str(d), max_model_len=64, num_blocks=64)
    assert engine.engine_core.model.config.eos_token_id is None


# ------------------------------------------------------------------ CLI
CLI = [
    ("empty-prompt", ["generate", ""], "prompt is empty"),
    ("cache-too-small", ["trace", "x", "--num-blocks", "2"], "KV cache too small"),
    ("block-size-0", ["generate", "x", "--block-size", "0"], "block_size must be an int >= 1"),
    ("no-such-model", ["generate", "x", "--model", "/nonexistent/dir"], "model must be"),
    ("prompt-too-long", ["generate", "x" * 40, "--max-model-len", "16", "--num-blocks", "8"], "max_model_len=16"),
    ("missing-scheduler-file", ["trace", "x", "--scheduler", "/nonexistent/lab.py"], "no such file"),
]


@pytest.mark.parametrize("case, argv, message", CLI, ids=[c[0] for c in CLI])
def test_cli(case, argv, message, capsys):
    assert main(argv) == 2, f"{case}: a bad command line exits 2"
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_the_table_has_at_least_sixty_cases():
    n = len(SAMPLING) + len(PROMPTS) + len(IDS) + len(LOGITS) + len(CONFIG) + len(MODEL_CONFIG) + len(LOADER) + len(CLI)
    assert n >= 60, n
