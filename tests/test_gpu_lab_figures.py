"""A GPU lab's checks and its figures, run on CPU with the engine child faked.

The whole-suite runner (tools/gpu_box/run_suite.sh) does not pass ``-s``, so a number a
GPU test only prints is lost; the 2026-12-05 H100 run kept no phase 06 throughput for
that reason. Here phase 06 lab 02's GPU test runs against canned engine results, to prove
that it records every figure its README quotes and that its assertions accept them.
"""
from pathlib import Path

import pytest

from course.labkit import load_lab, load_module_from_path
from mini_vllm.config import ModelConfig
from mini_vllm.quant import SCHEMES

LAB = Path(__file__).resolve().parents[1] / "phase-06-quantization" / "labs" / "lab-02-quantize-and-eval"
HF_CONFIG = {"num_hidden_layers": 2, "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 512, "tie_word_embeddings": False}


class _Request:
    def getfixturevalue(self, name):
        return "/nonexistent/tiny-llama"


def _canned(lab, model, quantization):
    shape = ModelConfig.from_hf_config(HF_CONFIG)
    fp8 = quantization == "fp8"
    return {"model": model, "quantization": quantization or "none", "output_tokens_per_s": 3986 if fp8 else 2229,
            "num_gpu_blocks": 1_537_267 if fp8 else 1_535_148, "block_size": 16,
            "kv_cache_tokens_logged": (1_537_267 if fp8 else 1_535_148) * 16,
            "param_bytes": lab.weight_bytes(shape, SCHEMES["fp8_w8a8" if fp8 else "fp16"]), "hf_config": HF_CONFIG,
            "all_full_length": True, "all_logprobs_finite": True, "vocab_ok": True,
            "layers": {"qkv_proj": "Fp8OnlineLinearMethod" if fp8 else "UnquantizedLinearMethod",
                       "qkv_weight_dtype": "torch.float8_e4m3fn" if fp8 else "torch.bfloat16",
                       "lm_head": "UnquantizedEmbeddingMethod"}}


@pytest.fixture
def spec_and_lab(monkeypatch):
    """The lab's test module and its solution, with no real-model env var to redirect them."""
    monkeypatch.delenv("MINI_VLLM_MODEL", raising=False)
    monkeypatch.delenv("MINI_VLLM_AWQ_MODEL", raising=False)
    return load_module_from_path(LAB / "test_lab.py"), load_lab(LAB, "solution")


def test_phase06_gpu_test_records_throughput_blocks_and_weights(spec_and_lab, monkeypatch):
    spec, lab = spec_and_lab
    monkeypatch.setattr(spec, "_measure_in_child", _canned)
    got = {}
    spec.test_fp16_vs_fp8_on_real_vllm(lab, None, _Request(), got.__setitem__)
    assert got["phase06.lab02.run1.none.output_tokens_per_s"] == 2229
    assert got["phase06.lab02.run2.fp8.output_tokens_per_s"] == 3986
    assert got["phase06.lab02.run1.none.num_gpu_blocks"] == 1_535_148
    assert got["phase06.lab02.run2.fp8.kv_cache_tokens_logged"] == 1_537_267 * 16
    assert (got["phase06.lab02.run1.none.weights_mib"], got["phase06.lab02.run2.fp8.weights_mib"]) == (2.75, 1.63)
    assert got["phase06.lab02.run2.fp8.predicted_weights_mib"] == 1.63
    assert got["phase06.lab02.run2.fp8.qkv_method"] == "Fp8OnlineLinearMethod"


def test_phase06_gpu_test_still_rejects_a_wrong_dispatch(spec_and_lab, monkeypatch):
    spec, lab = spec_and_lab

    def unquantized(lab_, model, quantization):
        run = _canned(lab_, model, None)
        return {**run, "quantization": quantization or "none"}

    monkeypatch.setattr(spec, "_measure_in_child", unquantized)
    with pytest.raises(AssertionError):
        spec.test_fp16_vs_fp8_on_real_vllm(lab, None, _Request(), lambda key, value: None)
