#!/usr/bin/env python3
"""Build the two tiny Hugging Face checkpoints mini_vllm's loader is tested against.

    .venv/bin/python tools/make_tiny_checkpoint.py [--out mini_vllm/testdata]

writes ``tiny-llama/`` and ``tiny-qwen2/``, each a directory that
``transformers.AutoModelForCausalLM.from_pretrained`` and ``mini_vllm.loader`` both
read: ``config.json``, ``model.safetensors``, ``tokenizer.json``,
``tokenizer_config.json``, plus ``reference.json`` with what transformers computes for
three prompts that share a prefix.

The two differ in every way the loader has to care about:

| | tiny-llama | tiny-qwen2 |
|---|---|---|
| weights on disk | bfloat16 | float16 |
| q/k/v bias | no | yes |
| lm_head | its own tensor | tied to embed_tokens |
| RoPE | llama3 scaling, theta 500000, new ``rope_parameters`` key | theta 1e6, legacy top-level ``rope_theta`` key |
| RMSNorm eps | 1e-5 | 1e-6 |
| BOS | prepended by the tokenizer | none |

Weights are random (seeded) but not transformers' defaults: norms are 1 + noise and
biases are non-zero, so a loader that drops a norm weight or a bias fails the test.
The reference is computed by transformers in float32 from the files as written (so the
bf16/fp16 rounding is part of the model, exactly as the loader sees it), greedy, one
full forward per token without a KV cache. Run twice, the script writes identical bytes.

    .venv/bin/python tools/make_tiny_checkpoint.py --reference-for DIR --reference-out FILE

writes only the reference (same prompts, same format) for an existing checkpoint, e.g.
a real model; ``mini_vllm/test_loader.py`` runs this for ``$MINI_VLLM_HF_MODEL``, so the
test process itself never imports torch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

# Text the byte-level BPE learns its merges from. Any text works; this one is about the
# course so the merged tokens look familiar in a trace.
CORPUS = [
    "A block table maps each logical block of a request to a physical block in the pool.",
    "The scheduler hands out a token budget every step, running requests first.",
    "Prefix caching hashes full blocks, so two prompts that start alike share memory.",
    "When the pool runs dry the newest request is preempted and recomputed later.",
    "Chunked prefill splits a long prompt across steps so decodes keep flowing.",
    "The engine samples one token per request whenever its prompt is fully computed.",
]
SHARED = "The scheduler hands out a token budget and the block pool"
PROMPTS = [SHARED + " fills", SHARED + " frees the newest request", SHARED + " shares a prefix"]
NUM_NEW_TOKENS = 8
MIN_MARGIN = 1e-3  # greedy top-1 must beat top-2 by this much, or numpy vs torch could flip it

SPECS = {
    "tiny-llama": dict(
        config_cls=LlamaConfig, dtype=torch.bfloat16, seed=0, bos="<s>", eos="</s>", add_bos=True,
        config=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=2048, rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                                 high_freq_factor=4.0, original_max_position_embeddings=64),
        ),
    ),
    "tiny-qwen2": dict(
        config_cls=Qwen2Config, dtype=torch.float16, seed=1, bos=None, eos="<|endoftext|>", add_bos=False,
        legacy_rope_theta=1000000.0,
        config=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-6,
            tie_word_embeddings=True, use_sliding_window=False,
            rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
        ),
    ),
}


def build_tokenizer(bos: str | None, eos: str, add_bos: bool) -> PreTrainedTokenizerFast:
    specials = [t for t in (bos, eos) if t]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tok.token_to_id(bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos)


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Scaled so logits spread over a few units: greedy picks are then far from ties."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen)
            if "norm" in name:
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            elif "embed_tokens" in name:
                p.copy_(0.1 * noise)  # small, so a tied lm_head does not just echo the last token
            else:
                p.copy_(noise / p.shape[1] ** 0.5)


def greedy_reference(model, tokenizer, prompt: str) -> dict:
    ids = tokenizer(prompt)["input_ids"]
    tokens, rows = list(ids), []
    with torch.no_grad():
        for _ in range(NUM_NEW_TOKENS):
            logits = model(torch.tensor([tokens]), use_cache=False).logits[0, -1].float()
            top2 = torch.topk(logits, 2).values
            if top2[0] - top2[1] < MIN_MARGIN:
                raise SystemExit(f"greedy margin {float(top2[0] - top2[1]):.2e} too small for {prompt!r}: change the seed")
            rows.append([round(float(x), 6) for x in logits])
            tokens.append(int(torch.argmax(logits)))
    return dict(prompt=prompt, prompt_token_ids=ids, output_token_ids=tokens[len(ids):], logits=rows)


def reference_for(path: Path, weights_dtype: str) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return dict(
        generated_by="tools/make_tiny_checkpoint.py",
        transformers_compute_dtype="float32",
        weights_dtype=weights_dtype,
        cases=[greedy_reference(model, tokenizer, p) for p in PROMPTS],
    )


def make(name: str, spec: dict, out: Path) -> None:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(spec["bos"], spec["eos"], spec["add_bos"])
    vocab = len(tokenizer)
    token_ids = dict(eos_token_id=tokenizer.convert_tokens_to_ids(spec["eos"]),
                     bos_token_id=tokenizer.convert_tokens_to_ids(spec["bos"]) if spec["bos"] else None)
    config = spec["config_cls"](vocab_size=vocab, **token_ids, **spec["config"])
    torch.manual_seed(spec["seed"])
    model = AutoModelForCausalLM.from_config(config)
    randomize(model, spec["seed"])
    model.to(spec["dtype"]).save_pretrained(d)
    tokenizer.save_pretrained(d)
    for extra in ("generation_config.json", "chat_template.jinja"):
        (d / extra).unlink(missing_ok=True)
    if "legacy_rope_theta" in spec:
        # Checkpoints saved before transformers 5 carry a top-level rope_theta and no
        # rope_parameters; the loader must read both spellings.
        cfg = json.loads((d / "config.json").read_text())
        cfg.pop("rope_parameters")
        cfg["rope_theta"] = spec["legacy_rope_theta"]
        (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    reference = reference_for(d, str(spec["dtype"]).removeprefix("torch."))
    (d / "reference.json").write_text(json.dumps(reference) + "\n")
    for f in sorted(d.iterdir()):
        print(f"{name}/{f.name:22s} {f.stat().st_size:8d} B  sha256 {hashlib.sha256(f.read_bytes()).hexdigest()[:12]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "mini_vllm" / "testdata")
    parser.add_argument("--reference-for", type=Path, help="only compute the reference for this checkpoint directory")
    parser.add_argument("--reference-out", type=Path, help="where --reference-for writes its JSON")
    args = parser.parse_args()
    np.random.seed(0)
    torch.use_deterministic_algorithms(True)
    if args.reference_for:
        reference = reference_for(args.reference_for, "as stored")
        args.reference_out.write_text(json.dumps(reference) + "\n")
        return
    for name, spec in SPECS.items():
        make(name, spec, args.out)


if __name__ == "__main__":
    main()
