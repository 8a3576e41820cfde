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
