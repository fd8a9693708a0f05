"""Offline tokenizers: CLIP tokenizers built from an in-memory byte-level BPE vocabulary, and a
character-level T5 (unigram) tokenizer for the T5 encoders of SD3 and Flux.

Real CLIP tokenizers come from the hub; tests and tiny models need one without a download.
A byte-level vocabulary (every byte as a token, with and without the end-of-word marker `</w>`)
can spell any text, so it is a complete, if inefficient, CLIP tokenizer. Extra merges make chosen
words single tokens, which is what a "rare token" search looks at.
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import CLIPTokenizer, T5Tokenizer

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable unicode character (the byte-level alphabet)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    shifted = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + shifted)
            shifted += 1
    return {byte: chr(code) for byte, code in zip(printable, codes)}


def byte_level_vocab() -> dict[str, int]:
    """The 514-entry base vocabulary: 256 byte characters, the same with `</w>`, BOS, EOS."""
    alphabet = list(bytes_to_unicode().values())
    tokens = alphabet + [char + END_OF_WORD for char in alphabet] + [BOS_TOKEN, EOS_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def byte_level_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A CLIPTokenizer over the byte-level vocabulary with no merges: every byte is one token."""
    return _clip_tokenizer(byte_level_vocab(), [], model_max_length)


def clip_tokenizer_from_words(words: list[str], model_max_length: int = 77) -> CLIPTokenizer:
    """A byte-level CLIPTokenizer plus merges learned so each given word is a single token.

    Words are lower-cased (CLIP normalises text so) and must each be one CLIP pre-token
    (letters only, or a single digit, or punctuation only); anything else raises ValueError.
    """
    base = byte_level_clip_tokenizer(model_max_length)
    vocab = byte_level_vocab()
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in dict.fromkeys(words):  # de-duplicate, keep order
        symbols = _word_symbols(base, word)
        pieces = _apply_merges(symbols, ranks)
        # Chain the remaining pieces left to right. New merges rank after all earlier ones, so
        # words learned earlier keep tokenising exactly as before.
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            vocab.setdefault(pair[0] + pair[1], len(vocab))
            pieces = [pair[0] + pair[1], *pieces[2:]]
    return _clip_tokenizer(vocab, merges, model_max_length)


def _clip_tokenizer(
    vocab: dict[str, int], merges: list[tuple[str, str]], model_max_length: int
) -> CLIPTokenizer:
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def _word_symbols(tokenizer: CLIPTokenizer, word: str) -> list[str]:
    """The byte-level symbols CLIP's BPE starts from for `word`, the last one marked `</w>`."""
    backend = tokenizer.backend_tokenizer
    normalized = backend.normalizer.normalize_str(word)
    pre_tokens = backend.pre_tokenizer.pre_tokenize_str(normalized)
    if len(pre_tokens) != 1:
        raise ValueError(
            f"word {word!r} splits into {len(pre_tokens)} CLIP pre-tokens "
            f"{[text for text, _ in pre_tokens]}; give single words (letters only) instead"
        )
    symbols = list(pre_tokens[0][0])
    symbols[-1] += END_OF_WORD
    return symbols


def _apply_merges(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Plain BPE: repeatedly merge the adjacent pair with the lowest rank."""
    symbols = list(symbols)
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        ranked = [(rank, i) for rank, i in pairs if rank is not None]
        if not ranked:
            break
        _, i = min(ranked)
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    return symbols


def character_t5_tokenizer(model_max_length: int = 77) -> T5Tokenizer:
    """A T5Tokenizer over single characters (ASCII and Latin-1 letters, alone and word-initial).

    Order as T5 expects: <pad> = 0, </s> = 1, <unk> = 2; no sentencepiece model file needed. 320
    entries, so the loaders' check for the silent 2-token fallback passes.
    """
    from transformers import T5Tokenizer

    chars = string.ascii_letters + string.digits + string.punctuation + "".join(map(chr, range(0xC0, 0x100)))
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(char, -3.0) for char in chars] + [("\u2581" + char, -2.5) for char in chars]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)
