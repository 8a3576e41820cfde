"""Lab 16-03: the streaming detokenizer, which never emits a broken character. Your work: TODOs 1-5.

Two levels. ``ByteStreamDetokenizer`` works on ``ByteTokenizer`` ids (one id per UTF-8
byte) and uses UTF-8's lead-byte lengths to hold an unfinished character back.
``IncrementalDetokenizer`` works with any tokenizer that has ``decode(ids)``: it is
upstream's slow path,
vllm/tokenizers/detokenizer_utils.py:110@0decac0 (detokenize_incrementally), which decodes
a small window of ids twice (with and without the new one) and emits the difference, so a
SentencePiece space or a byte-fallback character comes out right.
"""
from __future__ import annotations

from mini_vllm.detokenizer import INITIAL_OFFSET, REPLACEMENT_CHAR


def utf8_expected_len(lead_byte: int) -> int:
    """Bytes in the UTF-8 sequence that ``lead_byte`` starts: 1 (0xxxxxxx), 2 (110xxxxx),
    3 (1110xxxx) or 4 (11110xxx); 0 for a byte that cannot start one (a continuation byte
    10xxxxxx, or 0xF8-0xFF)."""
    raise NotImplementedError("TODO 1: the length a lead byte announces (README task 1)")


def complete_prefix_len(buf: bytes) -> int:
    """Length of the longest prefix of ``buf`` that does not end inside an unfinished
    character: ``buf`` minus a tail that is a lead byte plus fewer continuation bytes than
    it announces. Bytes that can never become valid count as complete (they decode to
    U+FFFD whatever comes next, so waiting would only delay them)."""
    raise NotImplementedError("TODO 2: where the complete characters end (README task 2)")


class ByteStreamDetokenizer:
    """``feed(token_id)`` returns the text the id completes ("" while a character is
    unfinished); ids outside 0-255 (EOS) add nothing. ``flush()`` returns what is held,
    decoded with U+FFFD, at the end of the stream."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, token_id: int) -> str:
        raise NotImplementedError("TODO 3: emit what a byte completes, hold the rest (README task 3)")

    def flush(self) -> str:
        raise NotImplementedError("TODO 3: the held tail at the end of the stream (README task 3)")


def detokenize_incrementally(tokenizer, all_ids: list[int], prefix_offset: int,
                             read_offset: int) -> tuple[str, int, int]:
    """The text that the last id of ``all_ids`` adds, and the next (prefix, read) offsets.

    ``all_ids[prefix_offset:read_offset]`` was already emitted; it is decoded again only as
    left context. If the decode with the new id ends in U+FFFD, or is not longer than the
    context, emit "" and keep both offsets; else emit the part beyond the context and
    move the window: prefix <- read, read <- len(all_ids)."""
    raise NotImplementedError("TODO 4: one step of the two-offset window (README task 4)")


class IncrementalDetokenizer:
    """Per request: the last ``INITIAL_OFFSET + 2`` prompt ids are left context (upstream's
    convert_prompt_ids_to_tokens); ``decode_next(id)`` emits what the id completes;
    ``finish()`` emits the held tail so that all pieces add up to
    ``tokenizer.decode(output_ids)``."""

    def __init__(self, tokenizer, prompt_token_ids=()) -> None:
        self.tokenizer = tokenizer
        self.ids = [int(t) for t in prompt_token_ids][-INITIAL_OFFSET - 2:]
        self.num_context = len(self.ids)
        self.read_offset = len(self.ids)
        self.prefix_offset = max(self.read_offset - INITIAL_OFFSET, 0)
        self.output_text = ""

    def decode_next(self, token_id: int) -> str:
        raise NotImplementedError("TODO 5: one id through the window, offsets kept (README task 5)")

    def finish(self) -> str:
        raise NotImplementedError("TODO 5: the held tail at the end of the stream (README task 5)")


def naive_decode_stream(tokenizer, ids) -> list[str]:
    """Given: the bug this lab fixes, kept as a control: decode each id on its own."""
    return [tokenizer.decode([i]) for i in ids]


if __name__ == "__main__":
    from mini_vllm import ByteTokenizer
    from mini_vllm.detokenizer import ToySentencePieceTokenizer

    byte_tok = ByteTokenizer()
    ids = byte_tok.encode("Go 🚀!")
    d = ByteStreamDetokenizer()
    print(f"ByteTokenizer ids       {ids}")
    print(f"naive per-token decode  {naive_decode_stream(byte_tok, ids)}")
    print(f"ByteStreamDetokenizer   {[d.feed(i) for i in ids]}")
    sp = ToySentencePieceTokenizer()
    ids = sp.encode("Hello world é")
    inc = IncrementalDetokenizer(sp)
    print(f"SentencePiece-like ids  {ids}")
    print(f"naive per-token decode  {naive_decode_stream(sp, ids)}")
    pieces = []
    for i in ids:
        pieces.append(inc.decode_next(i))
    print(f"IncrementalDetokenizer  {pieces} offsets=({inc.prefix_offset}, {inc.read_offset})")
    cut = byte_tok.encode("ok 🚀")[:-1]
    d = ByteStreamDetokenizer()
    print(f"cut mid-rocket          {[d.feed(i) for i in cut]} flush={d.flush()!r}")
