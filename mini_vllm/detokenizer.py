"""Incremental detokenization: turn one new token id into the text it adds, safely.

Streaming sends text as tokens arrive, but token boundaries are not character
boundaries. A byte-level tokenizer (``ByteTokenizer``, or any byte-level BPE) can end a
step in the middle of a UTF-8 character, and a SentencePiece tokenizer decodes a token
differently alone than after its neighbours (a word-initial token's leading space is
dropped at the start of a decode). Decoding each new token by itself is therefore wrong
twice over: it emits U+FFFD for half characters and loses spaces.

The fix is upstream's slow path, ``detokenize_incrementally``
(vllm/tokenizers/detokenizer_utils.py:110@0decac0 (detokenize_incrementally)): keep two
offsets into the token list, decode ``ids[prefix:read]`` and ``ids[prefix:]`` with the
same left context, emit the difference, and emit nothing while the decode ends in U+FFFD
(an unfinished byte sequence). mini_vllm works on ids and ``tokenizer.decode`` where
upstream works on token strings and ``convert_tokens_to_string``; the offsets move the
same way. Upstream's fast path hands the same job to the ``tokenizers`` library's
``DecodeStream`` (vllm/v1/engine/detokenizer.py:183@0decac0 ("self.stream = tokenizers.decoders.DecodeStream(")).

One deliberate difference: at the end of a stream, ``IncrementalDetokenizer.finish``
emits what is still held (a truncated character decodes to U+FFFD), so the streamed
pieces always concatenate to ``tokenizer.decode(output_ids)``, the text ``LLMEngine``
returns. Upstream has no flush: bytes held at the end are never appended to its output
text, in the streamed and the final response alike.
"""

from __future__ import annotations

# Upstream's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET
# (vllm/tokenizers/detokenizer_utils.py:56@0decac0 (INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET)):
# how many prompt tokens of left context the first decode gets.
INITIAL_OFFSET = 5
REPLACEMENT_CHAR = "\ufffd"


def detokenize_incrementally(tokenizer, all_ids: list[int], prefix_offset: int,
                             read_offset: int) -> tuple[str, int, int]:
    """The text the last id of ``all_ids`` adds, and the new (prefix, read) offsets.

    ``ids[prefix_offset:read_offset]`` is text already emitted, decoded again only as
    left context. Nothing is emitted (offsets unchanged) while the decode ends in U+FFFD
    or is no longer than the context."""
    prefix_text = tokenizer.decode(all_ids[prefix_offset:read_offset])
    new_text = tokenizer.decode(all_ids[prefix_offset:])
    if len(new_text) <= len(prefix_text) or new_text.endswith(REPLACEMENT_CHAR):
        return "", prefix_offset, read_offset
    return new_text[len(prefix_text):], read_offset, len(all_ids)


class IncrementalDetokenizer:
    """Per-request streaming decoder: ``decode_next(id)`` returns the text that id
    completes (often "", never a broken character); ``finish()`` returns what is held."""

    def __init__(self, tokenizer, prompt_token_ids=()) -> None:
        self.tokenizer = tokenizer
        context = [int(t) for t in prompt_token_ids][-INITIAL_OFFSET - 2:]
        self.ids: list[int] = context
        self.read_offset = len(context)
        self.prefix_offset = max(self.read_offset - INITIAL_OFFSET, 0)
        self.num_context = len(context)
        self.output_text = ""

    def decode_next(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        text, self.prefix_offset, self.read_offset = detokenize_incrementally(
            self.tokenizer, self.ids, self.prefix_offset, self.read_offset)
        self.output_text += text
        return text

    def finish(self) -> str:
        """The held tail (decoded with U+FFFD for a cut character), so that the
        concatenated pieces equal ``tokenizer.decode`` of all output ids."""
        full = self.tokenizer.decode(self.ids[self.num_context:])
        rest = full[len(self.output_text):] if full.startswith(self.output_text) else ""
        self.output_text += rest
        return rest


class ToySentencePieceTokenizer:
    """A SentencePiece-like tokenizer for tests: pieces mark a leading space with "▁",
    bytes outside the vocabulary fall back to one ``<0xNN>`` token each, and ``decode``
    drops the space of the first piece, as Llama's tokenizer does. So "▁world" decodes
    to "world" alone but to " world" after "Hello": the context dependence that upstream's
    prefix offset exists for. Id 0 is EOS and decodes to nothing."""

    eos_token_id = 0

    def __init__(self, words=("Hello", "world", "the", "cache", "is", "paged", "café")) -> None:
        pieces = [p for w in words for p in (w, "\u2581" + w)]
        self.vocab = ["</s>"] + pieces + [f"<0x{b:02X}>" for b in range(256)]
        self.ids = {p: i for i, p in enumerate(self.vocab)}
        self.vocab_size = len(self.vocab)

    def encode(self, text: str) -> list[int]:
        out = []
        for n, word in enumerate(text.split(" ")):
            piece = ("\u2581" if n else "") + word
            if piece in self.ids:
                out.append(self.ids[piece])
                continue
            data = piece.replace("\u2581", " ").encode("utf-8")
            out.extend(self.ids[f"<0x{b:02X}>"] for b in data)
        return out

    def decode(self, ids) -> str:
        data = bytearray()
        for i in ids:
            piece = self.vocab[int(i)] if 0 < int(i) < self.vocab_size else ""
            if piece.startswith("<0x") and len(piece) == 6:
                data.append(int(piece[3:5], 16))
            else:
                data += piece.replace("\u2581", " ").encode("utf-8")
        text = bytes(data).decode("utf-8", errors="replace")
        return text[1:] if text.startswith(" ") else text
