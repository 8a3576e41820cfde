"""Lab 16-03 spec: incremental detokenization that never emits a broken character.

Byte level first (UTF-8 lead bytes, hold the tail, flush honestly), then the
tokenizer-agnostic algorithm upstream uses (a window of ids decoded twice), checked on a
SentencePiece-like tokenizer whose decode depends on context, against mini_vllm's
detokenizer, and against the ``tokenizers`` library's DecodeStream (what vLLM's fast path
calls) where that package is installed.
"""
import importlib.util
import random

import pytest

from mini_vllm import ByteTokenizer
from mini_vllm.detokenizer import IncrementalDetokenizer as MiniIncrementalDetokenizer
from mini_vllm.detokenizer import ToySentencePieceTokenizer

BYTES = ByteTokenizer()
ROCKET = "\U0001F680"
WORLD = "naïve café — 你好 🚀🇫🇷!"


def feed_all(detok, ids):
    return [detok.feed(i) for i in ids]


# -- task 1: the lead-byte table ---------------------------------------------------------

def test_utf8_expected_len_for_every_byte(lab):
    want = {}
    for b in range(256):
        want[b] = 1 if b < 0x80 else 0 if b < 0xC0 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4 if b < 0xF8 else 0
    got = {b: lab.utf8_expected_len(b) for b in range(256)}
    bad = {hex(b): (got[b], want[b]) for b in range(256) if got[b] != want[b]}
    assert not bad, f"byte: (yours, expected) {bad}"


@pytest.mark.parametrize("ch, n", [("A", 1), ("é", 2), ("你", 3), (ROCKET, 4)])
def test_lead_byte_announces_the_length_of_real_characters(lab, ch, n):
    data = ch.encode()
    assert len(data) == n and lab.utf8_expected_len(data[0]) == n
    assert all(lab.utf8_expected_len(b) == 0 for b in data[1:]), "continuation bytes start nothing"


# -- task 2: where the complete part ends ---------------------------------------------------

@pytest.mark.parametrize("buf, n", [
    (b"", 0), (b"abc", 3), (ROCKET.encode()[:1], 0), (ROCKET.encode()[:3], 0), (ROCKET.encode(), 4),
    (b"a" + "你".encode()[:2], 1), ("é".encode() + ROCKET.encode()[:2], 2),
    (b"\x80", 1), (b"\xff", 1), (b"\xe2A", 2), (b"\x80\x80\x80\x80", 4)])
def test_complete_prefix_len_examples(lab, buf, n):
    assert lab.complete_prefix_len(buf) == n, f"{buf!r}"


def test_complete_prefix_len_at_every_cut_of_multilingual_text(lab):
    data = WORLD.encode()
    for cut in range(len(data) + 1):
        n = lab.complete_prefix_len(data[:cut])
        data[:n].decode("utf-8")  # raises if n ends inside a character
        assert cut - n <= 3, "at most three bytes of an unfinished character are held"
        assert WORLD.encode()[:cut][n:] == b"" or data[n] >= 0xC0, "the held tail starts at a lead byte"


# -- task 3: the byte-level streamer ------------------------------------------------------------

def test_ascii_streams_one_character_per_token(lab):
    assert feed_all(lab.ByteStreamDetokenizer(), BYTES.encode("hi there")) == list("hi there")


def test_rocket_is_three_silences_then_the_rocket(lab):
    assert feed_all(lab.ByteStreamDetokenizer(), BYTES.encode(ROCKET)) == ["", "", "", ROCKET]


def test_naive_per_token_decoding_really_is_broken(lab):
    ids = BYTES.encode(ROCKET)
    assert lab.naive_decode_stream(BYTES, ids) == ["\ufffd"] * 4, "the control: four garbage pieces"
    assert feed_all(lab.ByteStreamDetokenizer(), ids) == ["", "", "", ROCKET], "yours: three silences, one rocket"


def test_never_a_replacement_character_and_nothing_lost(lab):
    pieces = feed_all(lab.ByteStreamDetokenizer(), BYTES.encode(WORLD))
    assert not any("\ufffd" in p for p in pieces) and "".join(pieces) == WORLD


def test_flag_may_arrive_as_two_code_points(lab):
    pieces = feed_all(lab.ByteStreamDetokenizer(), BYTES.encode("🇫🇷"))
    assert [p for p in pieces if p] == ["🇫", "🇷"], "characters are the contract; grapheme clusters are the UI's"


def test_flush_reports_a_truncated_character_honestly(lab):
    d = lab.ByteStreamDetokenizer()
    ids = BYTES.encode("ok " + ROCKET)[:-1]
    assert feed_all(d, ids) == ["o", "k", " ", "", "", ""]
    assert d.flush() == "\ufffd" and d.flush() == "", "flush empties the buffer"


def test_eos_and_other_special_ids_add_nothing(lab):
    d = lab.ByteStreamDetokenizer()
    assert feed_all(d, [0xC3, BYTES.eos_token_id, 0xA9]) == ["", "", "é"], "EOS neither emits nor breaks the é"


def test_invalid_bytes_are_emitted_not_held_forever(lab):
    assert feed_all(lab.ByteStreamDetokenizer(), [0xFF, 0x41, 0x80]) == ["\ufffd", "A", "\ufffd"]


def test_byte_stream_equals_one_decode_on_random_bytes(lab):
    rng = random.Random(1603)
    alphabet = [0x41, 0x80, 0x9F, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x9A, 0xFF, 0xC0]
    for _ in range(2000):
        ids = [rng.choice(alphabet) for _ in range(rng.randint(0, 10))]
        d = lab.ByteStreamDetokenizer()
        got = "".join(feed_all(d, ids)) + d.flush()
        assert got == bytes(ids).decode("utf-8", errors="replace"), f"ids {ids}"


# -- task 4: one step of the window algorithm -------------------------------------------------

def test_detokenize_incrementally_holds_while_the_decode_ends_in_replacement(lab):
    ids = BYTES.encode("a") + list(ROCKET.encode()[:2])
    assert lab.detokenize_incrementally(BYTES, ids, 0, 1) == ("", 0, 1), "offsets unchanged while held"


def test_detokenize_incrementally_emits_and_moves_the_window(lab):
    ids = BYTES.encode("a" + ROCKET)
    assert lab.detokenize_incrementally(BYTES, ids, 0, 1) == (ROCKET, 1, 5)


def test_left_context_restores_the_sentencepiece_space(lab):
    sp = ToySentencePieceTokenizer()
    ids = sp.encode("Hello world")
    assert sp.decode(ids[1:]) == "world", "decoded alone, the piece drops its space"
    assert lab.detokenize_incrementally(sp, ids, 0, 1) == (" world", 1, 2)


# -- task 5: the per-request detokenizer ------------------------------------------------------

def test_incremental_detokenizer_keeps_spaces_the_naive_one_loses(lab):
    sp = ToySentencePieceTokenizer()
    ids = sp.encode("Hello world the cache is paged")
    assert "".join(lab.naive_decode_stream(sp, ids)) == "Helloworldthecacheispaged"
    d = lab.IncrementalDetokenizer(sp)
    assert [d.decode_next(i) for i in ids] == ["Hello", " world", " the", " cache", " is", " paged"]


def test_prompt_tail_is_the_first_left_context(lab):
    sp = ToySentencePieceTokenizer()
    d = lab.IncrementalDetokenizer(sp, sp.encode("the cache is paged Hello"))
    assert (d.prefix_offset, d.read_offset) == (0, 5)
    assert d.decode_next(sp.encode("Hello world")[1]) == " world"


def test_prompt_context_is_at_most_seven_ids(lab):
    d = lab.IncrementalDetokenizer(BYTES, BYTES.encode("a long prompt of many bytes"))
    assert (len(d.ids), d.prefix_offset, d.read_offset) == (7, 2, 7), "INITIAL_OFFSET + 2 ids, window of 5"
    assert d.decode_next(BYTES.encode("!")[0]) == "!" and (d.prefix_offset, d.read_offset) == (7, 8)


def test_byte_fallback_emoji_is_held_then_emitted_whole(lab):
    sp = ToySentencePieceTokenizer()
    ids = sp.encode("Hello " + ROCKET)
    d = lab.IncrementalDetokenizer(sp)
    assert [d.decode_next(i) for i in ids] == ["Hello", " ", "", "", "", ROCKET]
    assert (d.prefix_offset, d.read_offset) == (2, 6)


def test_finish_returns_the_held_tail_so_pieces_equal_one_decode(lab):
    sp = ToySentencePieceTokenizer()
    ids = sp.encode("Hello " + ROCKET)[:-2]
    d = lab.IncrementalDetokenizer(sp)
    pieces = [d.decode_next(i) for i in ids]
    assert "".join(pieces) + d.finish() == sp.decode(ids) == "Hello \ufffd"


@pytest.mark.parametrize("seed", range(5))
def test_matches_mini_vllm_detokenizer_piece_for_piece(lab, seed):
    rng = random.Random(seed)
    sp = ToySentencePieceTokenizer()
    words = ["Hello", "world", "the", "cache", "é", "你好", ROCKET, "paged", "café", "x"]
    text = " ".join(rng.choice(words) for _ in range(12))
    prompt, ids = sp.encode("Hello the"), sp.encode(text)
    mine, ref = lab.IncrementalDetokenizer(sp, prompt), MiniIncrementalDetokenizer(sp, prompt)
    assert [mine.decode_next(i) for i in ids] == [ref.decode_next(i) for i in ids]
    assert mine.finish() == ref.finish() and mine.output_text == text


@pytest.mark.skipif(importlib.util.find_spec("tokenizers") is None,
                    reason="needs the tokenizers package (pip install -e '.[models]') for its DecodeStream")
def test_matches_the_tokenizers_decode_stream_on_byte_level_bpe(lab):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tokenizers.decoders import DecodeStream

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the cache is paged, naïve café 你好 🚀 rockets"] * 10, trainer)

    class Adapter:
        def decode(self, ids):
            return tok.decode(ids, skip_special_tokens=False)

    text = "the naïve cache 你好 🚀🇫🇷 rockets!"
    ids = tok.encode(text).ids
    stream = DecodeStream(skip_special_tokens=False)
    want = [stream.step(tok, i) or "" for i in ids]
    d = lab.IncrementalDetokenizer(Adapter())
    assert [d.decode_next(i) for i in ids] == want, "the same pieces as vLLM's fast path (DecodeStream)"
    assert "".join(want) == text


class _TokenStrings:
    """The token-string interface upstream's slow path calls, over a tokenizer with
    ``decode``: a token's string is its vocabulary entry, and a list of token strings
    becomes text by decoding their ids together."""

    is_fast = True

    def __init__(self, tok):
        self.tok = tok

    def __len__(self):
        return self.tok.vocab_size

    def get_added_vocab(self):
        return {}

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        return [self.tok.vocab[i] for i in ids]

    def convert_tokens_to_string(self, tokens):
        return self.tok.decode([self.tok.ids[t] for t in tokens])


@pytest.mark.upstream
@pytest.mark.parametrize("seed", range(5))
def test_matches_the_pinned_detokenize_incrementally(lab, seed):
    from course.pin_source import exec_without_imports, upstream_available

    if not upstream_available():
        pytest.skip("upstream/ is not checked out: python tools/fetch_upstream.py upstream")
    pin = exec_without_imports("vllm/tokenizers/detokenizer_utils.py", {"TokenizerLike": object})
    sp = ToySentencePieceTokenizer()
    rng = random.Random(seed)
    words = ["Hello", "world", "the", "cache", "é", "你好", ROCKET, "paged", "café", "x"]
    prompt, out = sp.encode("the cache Hello"), sp.encode(" ".join(rng.choice(words) for _ in range(12)))
    tok = _TokenStrings(sp)
    tokens, prefix, read = pin["convert_prompt_ids_to_tokens"](tok, prompt)
    all_ids, want = list(prompt), []
    for i in out:
        all_ids.append(i)
        new_tokens, text, prefix, read = pin["detokenize_incrementally"](tok, all_ids, tokens, prefix, read)
        tokens.extend(new_tokens)
        want.append(text)
    mine = lab.IncrementalDetokenizer(sp, prompt)
    assert [mine.decode_next(i) for i in out] == want, "the pin's slow path, piece for piece"
