"""Rare-token finder and look-alike ranking for the instance prompt.

Importing this package is cheap: torch and transformers load inside the functions.
"""

from dreamcore.tokens.encoders import TextEncoder, load_text_encoders, text_encoders_fingerprint
from dreamcore.tokens.finder import TokenSearch, TokenSearchOptions, TokenSuggestion, find_rare_tokens
from dreamcore.tokens.lookalike import LookalikeCandidate, clip_image_similarities, load_clip, rank_lookalikes
from dreamcore.tokens.stage import TOKENS_STAGE, find_tokens_stage, read_token_table, tokens_key
from dreamcore.tokens.wordlist import CommonWords, common_words_from, load_common_words

__all__ = [
    "TOKENS_STAGE",
    "CommonWords",
    "LookalikeCandidate",
    "TextEncoder",
    "TokenSearch",
    "TokenSearchOptions",
    "TokenSuggestion",
    "clip_image_similarities",
    "common_words_from",
    "find_rare_tokens",
    "find_tokens_stage",
    "load_clip",
    "load_common_words",
    "load_text_encoders",
    "rank_lookalikes",
    "read_token_table",
    "text_encoders_fingerprint",
    "tokens_key",
]
