"""Real Hugging Face checkpoints through the unchanged engine: logits within 1e-4 of
transformers and the same greedy tokens, with chunked prefill, prefix caching and
preemption each on and off.

The references were computed by transformers (float32) and committed next to two tiny
random checkpoints (tools/make_tiny_checkpoint.py), so nothing is downloaded and torch
is never imported here. Set MINI_VLLM_HF_MODEL to a local checkpoint directory to run the
same check on a real model (its reference is computed in a subprocess by the same tool).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mini_vllm.cli import main
from mini_vllm.engine import EngineConfig, EngineCore, LLMEngine
from mini_vllm.loader import bf16_to_f32, config_from_hf, read_safetensors, rope_inv_freq
from mini_vllm.model import reference_generate
from mini_vllm.sampler import SamplingParams

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(__file__).resolve().parent / "testdata"
CHECKPOINTS = ["tiny-llama", "tiny-qwen2"]
ATOL = 1e-4

HAVE_MODELS_EXTRA = all(importlib.util.find_spec(m) for m in ("safetensors", "tokenizers"))
needs_models = pytest.mark.skipif(not HAVE_MODELS_EXTRA, reason="needs the models extra: pip install -e '.[models]'")


def reference(path: Path) -> dict:
    return json.loads((path / "reference.json").read_text())


COMBOS = [(c, p, q) for c in (True, False) for p in (True, False) for q in (True, False)]
COMBO_IDS = [f"chunk{int(c)}-prefix{int(p)}-preempt{int(q)}" for c, p, q in COMBOS]
BLOCK_SIZE = 4


def engine_kwargs(model, tokenizer, ref: dict, chunked: bool, prefix: bool, preempt: bool) -> dict:
    """Each feature on or off, sized from the prompts (34-41 tokens in the tiny
    checkpoints, fewer for a real tokenizer) plus their new tokens."""
    prompt_tokens = [len(c["prompt_token_ids"]) for c in ref["cases"]]
    longest = max(n + len(c["output_token_ids"]) for n, c in zip(prompt_tokens, ref["cases"]))
    max_model_len = -(-longest // BLOCK_SIZE) * BLOCK_SIZE
    roomy = len(prompt_tokens) * (max_model_len // BLOCK_SIZE) + 1
    kw = dict(block_size=BLOCK_SIZE, max_model_len=max_model_len, enable_prefix_caching=prefix,
              enable_chunked_prefill=chunked, num_blocks=roomy,
              # 8 is below every prompt length, so chunking must split a prompt; without
              # chunking, one step holds all prompts.
              max_num_batched_tokens=8 if chunked else max(max_model_len, sum(prompt_tokens)))
    if preempt and chunked:
        # Cramped: room for one longest request. Chunks stream every prompt in, so the
        # running requests outgrow it.
        kw["num_blocks"] = max_model_len // BLOCK_SIZE + 1
    elif preempt:
        # Unchunked, a prompt is admitted whole or not at all: give exactly the blocks all
        # prompts occupy once admitted (measured, since prefix sharing changes it), so
        # the first block any request grows into is taken from another request.
        probe = LLMEngine(loaded_model=model, tokenizer=tokenizer,
                          **dict(kw, enable_chunked_prefill=False, max_num_batched_tokens=sum(prompt_tokens) + max_model_len))
        for case in ref["cases"]:
            probe.add_request(case["prompt_token_ids"], SamplingParams(max_tokens=2))
        probe.step()
        admitted = roomy - 1 - probe.step_stats[0].num_free_blocks
        kw["num_blocks"] = max(admitted, max_model_len // BLOCK_SIZE) + 1
    return kw


def run_and_check(model, tokenizer, ref: dict, chunked: bool, prefix: bool, preempt: bool) -> None:
    """Serve all reference prompts at once; record every logits row the engine samples
    from, per request, and compare with transformers' rows and tokens."""
    engine = LLMEngine(loaded_model=model, tokenizer=tokenizer, **engine_kwargs(model, tokenizer, ref, chunked, prefix, preempt))
    core, rows, partial_prefills = engine.engine_core, {}, []
    execute_model = core.execute_model

    def recording_execute_model(so):
        ids, logits = execute_model(so)
        for rid, row in zip(ids, logits):
            rows.setdefault(rid, []).append(row)
        partial_prefills.extend(rid for rid in so.num_scheduled_tokens if rid not in ids)
        return ids, logits

    core.execute_model = recording_execute_model
    cases = ref["cases"]
    n_new = len(cases[0]["output_token_ids"])
    outs = engine.generate([c["prompt"] for c in cases], SamplingParams(temperature=0.0, max_tokens=n_new, ignore_eos=True))

    stats = engine.step_stats
    assert bool(partial_prefills) == chunked, "a step that computes part of a prompt iff chunking is on"
    assert any(o.num_cached_tokens for o in outs) == prefix, "prefix-cache hits iff caching is on"
    assert (sum(s.num_preempted for s in stats) > 0) == preempt, "preemption iff the cache is cramped"
    for out, case in zip(outs, cases):
        assert out.prompt_token_ids == case["prompt_token_ids"], "tokenizer.json must encode like transformers"
        assert out.output_token_ids == case["output_token_ids"], f"greedy tokens differ for {case['prompt']!r}"
        got = np.array(rows[out.request_id])
        assert got.shape == (n_new, len(case["logits"][0])), "one logits row per generated token"
        np.testing.assert_allclose(got, np.array(case["logits"]), rtol=0, atol=ATOL)
    assert core.kv_cache_manager.num_free_blocks == core.config.num_blocks - 1, "every block returned"


@pytest.fixture(scope="module")
def loaded():
    """name -> (model, tokenizer, reference), each checkpoint read once."""
    if not HAVE_MODELS_EXTRA:
        pytest.skip("needs the models extra: pip install -e '.[models]'")
    from mini_vllm.loader import load_model
    from mini_vllm.tokenizer import HFTokenizer

    return {n: (load_model(TESTDATA / n), HFTokenizer(TESTDATA / n), reference(TESTDATA / n)) for n in CHECKPOINTS}


@pytest.mark.parametrize("chunked,prefix,preempt", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("name", CHECKPOINTS)
def test_engine_matches_transformers_logits_and_greedy_tokens(loaded, name, chunked, prefix, preempt):
    run_and_check(*loaded[name], chunked, prefix, preempt)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_dense_reference_path_matches_transformers(loaded, name):
    model, tokenizer, ref = loaded[name]
    for case in ref["cases"]:
        params = SamplingParams(temperature=0.0, max_tokens=len(case["output_token_ids"]), ignore_eos=True)
        assert reference_generate(model, case["prompt_token_ids"], params=params) == case["output_token_ids"]


def test_loaded_models_have_the_checkpoints_quirks(loaded):
    llama, _, _ = loaded["tiny-llama"]
    qwen, _, _ = loaded["tiny-qwen2"]
    assert llama.config.rope_scaling is not None and llama.config.rms_norm_eps == 1e-5
    assert not np.shares_memory(llama.lm_head, llama.embed), "tiny-llama has its own lm_head"
    assert np.shares_memory(qwen.lm_head, qwen.embed), "tied: lm_head is the embedding, transposed"
    assert {"bq", "bk", "bv"} <= qwen.layers[0].keys() and "bq" not in llama.layers[0]
    assert llama.embed.dtype == np.float32 and llama.make_kv_caches(2, 4)[0].dtype == np.float32


def test_tokenizer_eos_and_decode(loaded):
    _, llama_tok, _ = loaded["tiny-llama"]
    _, qwen_tok, _ = loaded["tiny-qwen2"]
    assert llama_tok.encode("The")[0] == 0, "tiny-llama's post-processor prepends <s> (id 0)"
    assert qwen_tok.encode("The")[0] != 0, "tiny-qwen2 adds no BOS"
    assert (llama_tok.eos_token_id, qwen_tok.eos_token_id) == (1, 0)
    ids = llama_tok.encode("The block pool")
    assert llama_tok.decode(ids + [10_000]) == "The block pool", "BOS and out-of-vocabulary ids are skipped"


@needs_models
def test_missing_or_unused_tensors_are_errors():
    from mini_vllm.loader import LlamaForCausalLM, load_config

    path = TESTDATA / "tiny-llama"
    config, weights = load_config(path), read_safetensors(path / "model.safetensors")
    missing = dict(weights)
    del missing["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(ValueError, match="model.layers.1.mlp.up_proj.weight"):
        LlamaForCausalLM(config, missing)
    with pytest.raises(ValueError, match="not used"):
        LlamaForCausalLM(config, dict(weights, **{"model.extra.weight": np.zeros(3, np.float32)}))
    assert LlamaForCausalLM(config, dict(weights, **{"model.layers.0.self_attn.rotary_emb.inv_freq": np.zeros(8)}))


@needs_models
def test_bf16_file_upcasts_exactly():
    weights = read_safetensors(TESTDATA / "tiny-llama" / "model.safetensors")
    w = weights["model.layers.0.self_attn.q_proj.weight"]
    assert w.dtype == np.float32 and w.shape == (64, 64)
    assert not np.any(w.view(np.uint32) & 0xFFFF), "a bf16 value has 16 zero low bits as float32"


def test_bf16_bit_patterns():
    bits = np.array([0x3F80, 0xC000, 0x7F80, 0x0001, 0x4049], dtype=np.uint16)
    got = bf16_to_f32(bits)
    assert got[:3].tolist() == [1.0, -2.0, np.inf]
    assert got[3] == np.float32(2.0**-133), "subnormals survive"
    assert got[4] == np.float32(3.140625)


def test_config_reads_both_rope_spellings_and_rejects_the_unsupported():
    base = dict(model_type="llama", vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=16)
    llama3 = dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=64)
    new = config_from_hf(dict(base, rope_parameters=dict(rope_type="llama3", rope_theta=5e5, **llama3)))
    old = config_from_hf(dict(base, rope_theta=5e5, rope_scaling=dict(type="llama3", **llama3)))
    assert new == old and new.rope_theta == 5e5 and new.head_dim == 4 and new.num_kv_heads == 2
    assert config_from_hf(dict(base, model_type="qwen2")).qkv_bias
    for bad, match in ((dict(model_type="gpt2"), "not supported"), (dict(rope_scaling=dict(rope_type="yarn")), "yarn"),
                       (dict(hidden_act="gelu"), "silu"), (dict(mlp_bias=True), "mlp_bias")):
        with pytest.raises(ValueError, match=match):
            config_from_hf(dict(base, **bad))


def test_llama3_rope_scales_only_long_wavelengths():
    cfg = config_from_hf(dict(model_type="llama", vocab_size=10, hidden_size=64, num_hidden_layers=1,
                              num_attention_heads=4, intermediate_size=16,
                              rope_parameters=dict(rope_type="llama3", rope_theta=5e5, factor=8.0, low_freq_factor=1.0,
                                                   high_freq_factor=4.0, original_max_position_embeddings=64)))
    plain = config_from_hf(dict(model_type="llama", vocab_size=10, hidden_size=64, num_hidden_layers=1,
                                num_attention_heads=4, intermediate_size=16, rope_theta=5e5))
    scaled, base = rope_inv_freq(cfg), rope_inv_freq(plain)
    wavelen = 2 * np.pi / base
    assert np.array_equal(scaled[wavelen < 16], base[wavelen < 16]), "short wavelengths untouched"
    np.testing.assert_allclose(scaled[wavelen > 64], base[wavelen > 64] / 8, rtol=1e-6)
    middle = (wavelen >= 16) & (wavelen <= 64)
    assert middle.any() and np.all((scaled[middle] < base[middle]) & (scaled[middle] > base[middle] / 8))


def test_import_mini_vllm_stays_numpy_only():
    code = ("import sys, mini_vllm, mini_vllm.loader, mini_vllm.engine, mini_vllm.cli; "
            "print(sorted({'safetensors', 'tokenizers', 'torch', 'transformers'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@needs_models
def test_checkpoint_longer_than_its_positions_is_refused():
    with pytest.raises(ValueError, match="max_position_embeddings=2048"):
        EngineCore(EngineConfig.create(model=str(TESTDATA / "tiny-qwen2"), max_model_len=4096, num_blocks=300))


@needs_models
def test_cli_generate_prints_the_reference_tokens(capsys):
    path = TESTDATA / "tiny-llama"
    case = reference(path)["cases"][0]
    assert main(["generate", "--model", str(path), case["prompt"], "--max-tokens", "8", "--ignore-eos"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"token_ids: {case['output_token_ids']}"


@needs_models
def test_cli_trace_shows_the_block_pool_filling(capsys):
    cases = reference(TESTDATA / "tiny-qwen2")["cases"]
    argv = ["trace", "--model", str(TESTDATA / "tiny-qwen2"), cases[0]["prompt"], cases[1]["prompt"],
            "--block-size", "4", "--max-num-batched-tokens", "16", "--max-tokens", "2", "--show-text"]
    assert main(argv) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("#")]
    assert lines[0] == "step   0 | sched A:16 | running 1 waiting 1 | blocks 4/255 | preempted - | finished -"
    assert lines[-2].startswith(f"A: {cases[0]['prompt']!r} -> ")


# --- a real checkpoint, when one is given ---------------------------------------------

@pytest.fixture(scope="module")
def real_model(tmp_path_factory):
    path = os.environ.get("MINI_VLLM_HF_MODEL")
    if not path:
        pytest.skip("set MINI_VLLM_HF_MODEL to a local Llama/Qwen2 checkpoint directory")
    if not HAVE_MODELS_EXTRA:
        pytest.skip("needs the models extra: pip install -e '.[models]'")
    if not all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
        pytest.skip("the on-the-fly reference needs torch and transformers")
    out = tmp_path_factory.mktemp("ref") / "reference.json"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "make_tiny_checkpoint.py"), "--reference-for", path,
                           "--reference-out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    from mini_vllm.loader import load_model
    from mini_vllm.tokenizer import HFTokenizer

    return load_model(path), HFTokenizer(path), json.loads(out.read_text())


@pytest.mark.parametrize("chunked,prefix,preempt", COMBOS, ids=COMBO_IDS)
def test_real_checkpoint_matches_transformers(real_model, chunked, prefix, preempt):
    run_and_check(*real_model, chunked, prefix, preempt)
