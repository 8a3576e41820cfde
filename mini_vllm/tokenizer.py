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
        try:
            self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as exc:  # the tokenizers package raises its own Exception type
            raise ValueError(f"{path / 'tokenizer.json'}: not a tokenizer the tokenizers package can read ({exc})") from exc
        self.vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)

        def read(name: str) -> dict:
            f = path / name
            if not f.exists():
                return {}
            try:
                data = json.loads(f.read_text())
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{f}: not valid JSON ({exc})") from exc
            return data if isinstance(data, dict) else {}

        eos = read("generation_config.json").get("eos_token_id")
        if eos is None:
            eos = read("config.json").get("eos_token_id")
        if eos is None:
            token = read("tokenizer_config.json").get("eos_token")
            token = token.get("content") if isinstance(token, dict) else token
            eos = self._tokenizer.token_to_id(token) if token else None
        if isinstance(eos, list):
            eos = eos[0] if eos else None
        if eos is not None and (isinstance(eos, bool) or not isinstance(eos, int) or eos < 0):
            raise ValueError(f"{path}: eos_token_id must be an int >= 0 or a list of them, got {eos!r}")
        self.eos_token_id = eos

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        return list(self._tokenizer.encode(text).ids)

    def decode(self, ids) -> str:
        """Special tokens are skipped, as is any id past the tokenizer's vocabulary (a
        model's embedding table is often padded beyond it)."""
        return self._tokenizer.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size], skip_special_tokens=True)
