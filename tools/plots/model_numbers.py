#!/usr/bin/env python3
"""Phase 00 §3 and §6: where a Llama's parameters sit, and what the vocabulary costs.

Parameter counts from the Hugging Face ``config.json`` fields (no weights needed):
attention ``q, k, v, o``, the gated MLP's three matrices, two RMSNorm weights per layer,
the final norm, the embedding table and, unless ``tie_word_embeddings``, a separate LM
head of the same shape. No figure: ``main()`` prints the table phase 00 quotes.

Run: ``python tools/plots/model_numbers.py``.
"""
from __future__ import annotations

import _common  # noqa: F401

LLAMA_3_8B = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
              "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
              "head_dim": 128, "tie_word_embeddings": False}
LLAMA_3_2_1B = {"vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
                "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
                "head_dim": 64, "tie_word_embeddings": True}


def llama_params(c: dict) -> dict:
    h, d = c["hidden_size"], c["head_dim"]
    attn = h * c["num_attention_heads"] * d * 2 + h * c["num_key_value_heads"] * d * 2
    mlp = 3 * h * c["intermediate_size"]
    layer = attn + mlp + 2 * h
    embed = c["vocab_size"] * h
    head = 0 if c["tie_word_embeddings"] else embed
    total = c["num_hidden_layers"] * layer + h + embed + head
    return {"attention_per_layer": attn, "mlp_per_layer": mlp, "layers": c["num_hidden_layers"] * layer,
            "embedding": embed, "lm_head": head, "total": total,
            "mlp_share": c["num_hidden_layers"] * mlp / total,
            "vocab_share": (embed + head) / total}


def vocab_costs(c: dict, weight_bytes: int = 2, logit_bytes: int = 4) -> dict:
    """What the vocabulary costs per decode step, per sequence."""
    embed = c["vocab_size"] * c["hidden_size"]
    return {"embedding_table_bytes": embed * weight_bytes,
            "embedding_row_bytes": c["hidden_size"] * weight_bytes,   # what a lookup reads
            "lm_head_flops_per_token": 2 * embed,
            "logits_bytes_per_token": c["vocab_size"] * logit_bytes}


def data() -> dict:
    return {name: {**llama_params(c), **vocab_costs(c)}
            for name, c in (("Llama-3-8B", LLAMA_3_8B), ("Llama-3.2-1B", LLAMA_3_2_1B))}


def main() -> None:
    for name, r in data().items():
        print(f"{name}: {r['total'] / 1e9:.3f} B params; MLP {100 * r['mlp_share']:.1f}%;"
              f" embedding + head {100 * r['vocab_share']:.1f}% ({(r['embedding'] + r['lm_head']) / 1e6:.1f} M)")
        print(f"  embedding table {r['embedding_table_bytes'] / 2**30:.2f} GiB bf16, one row {r['embedding_row_bytes']} B;"
              f" LM head {r['lm_head_flops_per_token'] / 1e9:.2f} GFLOP/token;"
              f" logits {r['logits_bytes_per_token'] / 1024:.0f} KiB/token in fp32")


if __name__ == "__main__":
    main()
