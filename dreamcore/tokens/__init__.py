"""Rare-token finder and look-alike ranking for the instance prompt.

Importing this package is cheap: torch and transformers load inside the functions, and the
names below with their modules on first use (lazy_loader).
"""

import lazy_loader

_EXPORTS = {  # module -> the names it gives this package
    "encoders": ["TextEncoder", "load_text_encoders", "text_encoders_fingerprint"],
    "finder": ["TokenSearch", "TokenSearchOptions", "TokenSuggestion", "find_rare_tokens"],
    "lookalike": ["LookalikeCandidate", "clip_image_similarities", "load_clip", "rank_lookalikes"],
    "stage": ["TOKENS_STAGE", "TokensPlan", "find_tokens_stage", "plan_tokens", "read_token_table", "tokens_key"],
    "wordlist": ["CommonWords", "common_words_from", "load_common_words"],
}
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=_EXPORTS)
