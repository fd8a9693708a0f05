"""The rare-token finder: identifier strings that are one token everywhere and carry little prior.

Candidates are the vocabulary's own word-final, letters-only tokens ("zwx</w>"), minus common
words, their inflections and their pieces. Each is scored by how far it moves the text encoder's
reading of the class prompt (see `prior_shift`); the smallest movers come first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, model_validator

from dreamcore.tokens.encoders import PrefixCachedPrompts, TextEncoder
from dreamcore.tokens.wordlist import CommonWords

END_OF_WORD = "</w>"
# Scores are rounded before ranking so float noise (batch size, device) cannot reorder ties.
SCORE_DECIMALS = 6

Progress = Callable[[int, int], None]


class TokenSearchOptions(BaseModel):
    """What the rare-token finder looks for."""

    class_word: str = Field("", description="The subject's class (dog, man, ...); the prompt is read with it.")
    template: str = Field(
        "a photo of {token} {class_word}",
        description="Prompt the candidate is scored in; {token} must stand alone between spaces.",
    )
    max_tokens: int = Field(1, ge=1, description="Most tokens a candidate may take in each tokenizer.")
    min_length: int = Field(3, ge=1, description="Fewest letters of a candidate.")
    max_length: int = Field(8, ge=1, description="Most letters of a candidate.")
    top: int = Field(20, ge=1, description="How many suggestions to keep.")
    batch_size: int = Field(256, ge=1, description="Prompts per text-encoder batch.")

    @model_validator(mode="after")
    def _check(self) -> TokenSearchOptions:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} is above max_length {self.max_length}")
        if self.template.count("{token}") != 1:
            raise ValueError(f"template {self.template!r} must contain {{token}} exactly once")
        before, after = self.template.split("{token}")
        if (before and not before.endswith(" ")) or (after and not after.startswith(" ")):
            raise ValueError(f"template {self.template!r}: put spaces around {{token}} so it is a word of its own")
        return self

    def prompt_parts(self) -> tuple[str, str]:
        """The template's text before and after the candidate, with the class word filled in."""
        before, after = self.template.replace("{class_word}", self.class_word).split("{token}")
        return " ".join(before.split()), " ".join(after.split())


@dataclass(frozen=True)
class TokenSuggestion:
    """One candidate: its ids in each tokenizer and its prior shift (lower: less prior)."""

    token: str
    ids: dict[str, list[int]]
    score: float
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenSearch:
    """The ranked suggestions and what the search looked at."""

    suggestions: list[TokenSuggestion]
    scanned: int
    vocabulary_size: int
    rejected: dict[str, int]
    options: TokenSearchOptions

    def instance_prompt(self, rank: int = 0) -> str:
        """The instance prompt for a suggestion: "<token> <class word>"."""
        return f"{self.suggestions[rank].token} {self.options.class_word}".strip()


def find_rare_tokens(
    encoders: Sequence[TextEncoder],
    common_words: CommonWords,
    options: TokenSearchOptions | None = None,
    on_progress: Progress | None = None,
) -> TokenSearch:
    """Scan every candidate through every text encoder and rank by prior shift (ascending)."""
    options = options or TokenSearchOptions()
    candidates, rejected = candidate_tokens(encoders, common_words, options)
    if not candidates:
        raise ValueError(f"no candidate token survived the filters ({dict(rejected)}); widen the length bounds")
    done, total = 0, len(candidates) * len(encoders)
    per_encoder: dict[str, list[float]] = {}
    for encoder in encoders:
        ids = [candidate_ids[encoder.tokenizer_name] for _, candidate_ids in candidates]

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if on_progress:
                on_progress(done, total)

        per_encoder[encoder.name] = prior_shift(encoder, ids, options, advance)
    suggestions = [
        TokenSuggestion(
            token=token,
            ids=candidate_ids,
            score=round(sum(s[i] for s in per_encoder.values()) / len(encoders), SCORE_DECIMALS),
            scores={name: round(s[i], SCORE_DECIMALS) for name, s in per_encoder.items()},
        )
        for i, (token, candidate_ids) in enumerate(candidates)
    ]
    suggestions.sort(key=lambda s: (s.score, s.token))
    vocabulary = max(len(encoder.tokenizer) for encoder in encoders)
    return TokenSearch(suggestions[: options.top], len(candidates), vocabulary, dict(rejected), options)


def candidate_tokens(
    encoders: Sequence[TextEncoder], common_words: CommonWords, options: TokenSearchOptions
) -> tuple[list[tuple[str, dict[str, list[int]]]], Counter]:
    """Word-final letters-only vocabulary entries that pass the filters, with their ids per tokenizer."""
    rejected: Counter = Counter()
    words = set()
    for encoder in encoders:
        for entry in encoder.tokenizer.get_vocab():
            word = entry[: -len(END_OF_WORD)] if entry.endswith(END_OF_WORD) else ""
            if not (word.isascii() and word.isalpha() and word.islower()):
                continue
            words.add(word)
    survivors = []
    for word in sorted(words):
        if not options.min_length <= len(word) <= options.max_length:
            rejected["length"] += 1
        elif reason := common_words.rejection(word):
            rejected[reason.split(" (")[0]] += 1
        else:
            survivors.append(word)
    if not survivors:
        return [], rejected
    ids_by_tokenizer = {
        encoder.tokenizer_name: encoder.tokenizer(survivors, add_special_tokens=False)["input_ids"]
        for encoder in encoders
    }
    candidates = []
    for i, word in enumerate(survivors):
        ids = {name: list(all_ids[i]) for name, all_ids in ids_by_tokenizer.items()}
        if max(len(token_ids) for token_ids in ids.values()) > options.max_tokens:
            rejected[f"more than {options.max_tokens} token(s)"] += 1
        else:
            candidates.append((word, ids))
    return candidates, rejected


def prior_shift(
    encoder: TextEncoder,
    candidate_ids: Sequence[Sequence[int]],
    options: TokenSearchOptions,
    advance: Callable[[int], None] | None = None,
) -> list[float]:
    """Prior shift of each candidate in one encoder: the mean cosine distance (0 = unmoved, up to 2)
    between the encoder's hidden states at the class word and end-of-text positions of
    "a photo of <token> <class>" and those of "a photo of <class>".
    """
    import torch

    tokenizer = encoder.tokenizer
    before, after = options.prompt_parts()
    prefix = [tokenizer.bos_token_id, *_ids(tokenizer, before)]
    suffix = [*_ids(tokenizer, after), tokenizer.eos_token_id]
    prompts = PrefixCachedPrompts(encoder, prefix)
    baseline = prompts.encode(torch.tensor([suffix]))[0]  # [S, H]: the prompt without a candidate
    shifts = [0.0] * len(candidate_ids)
    # Batches of equal token count keep the suffix at the same positions in a batch.
    order = sorted(range(len(candidate_ids)), key=lambda i: (len(candidate_ids[i]), i))
    for start in range(0, len(order), options.batch_size):
        batch = order[start : start + options.batch_size]
        groups: dict[int, list[int]] = {}
        for i in batch:
            groups.setdefault(len(candidate_ids[i]), []).append(i)
        for length, members in groups.items():
            rest = torch.tensor([[*candidate_ids[i], *suffix] for i in members])
            hidden = prompts.encode(rest)[:, length:]  # [B, S, H] at the class and EOS positions
            distance = 1 - torch.nn.functional.cosine_similarity(hidden.float(), baseline.float()[None], dim=-1)
            for i, value in zip(members, distance.mean(dim=1).tolist()):
                shifts[i] = value
        if advance:
            advance(len(batch))
    return shifts


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
