"""A byte-level tokenizer: UTF-8 bytes are the token ids, plus one EOS id.

Real tokenizers (BPE, SentencePiece) learn a vocabulary; none of the engine's machinery
cares how ids were made, only that ``encode``/``decode`` round-trip and that one id
means "end of sequence". Bytes give that with no data files.
"""

from __future__ import annotations


class ByteTokenizer:
    """ids 0..255 are bytes, 256 is EOS; no BOS is prepended."""

    eos_token_id = 256
    vocab_size = 257

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        """Special ids (EOS, or anything outside 0..255) are skipped; a multi-byte
        character cut in half decodes to U+FFFD instead of raising."""
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")


class HFTokenizer:
    """A checkpoint's ``tokenizer.json`` through the ``tokenizers`` package (imported
    here, not at module import: ``pip install -e .[models]``).

    ``encode`` adds the special tokens the tokenizer's post-processor defines (a BOS for
    Llama, none for Qwen2 or SmolLM), as ``transformers``' ``tokenizer(text)`` does, so
    both feed the model the same ids. The EOS id comes from ``generation_config.json``,
    else ``config.json``, else the ``eos_token`` of ``tokenizer_config.json``; where a
    checkpoint lists several EOS ids the first is used (pass the rest as
    ``SamplingParams.stop_token_ids``).
    """

    def __init__(self, path) -> None:
        import json
        from pathlib import Path

        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ImportError("a checkpoint's tokenizer needs the 'tokenizers' package: pip install -e '.[models]'") from exc
        path = Path(path)
        if not (path / "tokenizer.json").exists():
            raise FileNotFoundError(f"{path} has no tokenizer.json")
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)

        def read(name: str) -> dict:
            f = path / name
            return json.loads(f.read_text()) if f.exists() else {}

        eos = read("generation_config.json").get("eos_token_id")
        if eos is None:
            eos = read("config.json").get("eos_token_id")
        if eos is None:
            token = read("tokenizer_config.json").get("eos_token")
            token = token.get("content") if isinstance(token, dict) else token
            eos = self._tokenizer.token_to_id(token) if token else None
        self.eos_token_id = eos[0] if isinstance(eos, list) else eos

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        return list(self._tokenizer.encode(text).ids)

    def decode(self, ids) -> str:
        """Special tokens are skipped, as is any id past the tokenizer's vocabulary (a
        model's embedding table is often padded beyond it)."""
        return self._tokenizer.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size], skip_special_tokens=True)
