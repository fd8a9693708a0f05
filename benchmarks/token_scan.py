"""Benchmark: a full 49,408-token rare-token scan through a CLIP-L-sized text encoder.

Random weights with CLIP ViT-L/14's text dimensions (hidden 768, 12 layers, 12 heads, MLP 3072,
vocabulary 49,408), built offline. Measures the finder's prefix-cached scan ("a photo of" computed
once, 3 positions per prompt) over every vocabulary id, and the plain full-prompt forward pass
(7 positions per prompt) on a slice for comparison. Also times the end-to-end finder (filters +
scan) on a learned BPE vocabulary of the same size.

    .venv/bin/python benchmarks/token_scan.py            # full scan; several minutes on 2 CPU cores
    .venv/bin/python benchmarks/token_scan.py --tokens 4096 --baseline-tokens 512   # quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import string
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VOCABULARY = 49_408


def clip_l_text_encoder(vocab_size: int, tokenizer):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return CLIPTextModel(config).eval()


def bpe_tokenizer_of_size(size: int):
    """A learned byte-level BPE vocabulary of at most `size` entries: random 3-9 letter words."""
    from dreamcore.models.tokenizer import clip_tokenizer_from_words

    rng = random.Random(0)
    words = list(
        dict.fromkeys("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(40_000))
    )
    low, high = 0, len(words)
    while low < high:  # most words whose vocabulary still fits
        middle = (low + high + 1) // 2
        if len(clip_tokenizer_from_words(["a", "photo", "of", "person", *words[:middle]])) <= size:
            low = middle
        else:
            high = middle - 1
    return clip_tokenizer_from_words(["a", "photo", "of", "person", *words[:low]])


def full_prompt_rate(encoder, ids, suffix, prefix, batch_size: int) -> float:
    """Tokens/s of the plain forward pass over whole prompts (no prefix cache)."""
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(ids), batch_size):
            batch = torch.tensor([[*prefix, token, *suffix] for token in ids[i : i + batch_size]])
            encoder.model(input_ids=batch)
    return len(ids) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=VOCABULARY)
    parser.add_argument("--baseline-tokens", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--skip-finder", action="store_true")
    args = parser.parse_args()

    import torch

    from dreamcore.tokens import TextEncoder, TokenSearchOptions, common_words_from, find_rare_tokens
    from dreamcore.tokens.finder import prior_shift

    started = time.perf_counter()
    tokenizer = bpe_tokenizer_of_size(VOCABULARY)
    print(f"BPE vocabulary: {len(tokenizer)} entries, built in {time.perf_counter() - started:.1f} s")
    encoder = TextEncoder("text_encoder", tokenizer, clip_l_text_encoder(VOCABULARY, tokenizer))
    options = TokenSearchOptions(class_word="person", batch_size=args.batch_size, min_length=1, max_length=20)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")

    ids = [[i] for i in range(args.tokens)]
    started = time.perf_counter()
    shifts = prior_shift(encoder, ids, options)
    seconds = time.perf_counter() - started
    print(f"prefix-cached scan: {len(shifts)} tokens in {seconds:.1f} s = {len(shifts) / seconds:.0f} tokens/s")

    prefix = [tokenizer.bos_token_id, *tokenizer("a photo of", add_special_tokens=False)["input_ids"]]
    suffix = [*tokenizer("person", add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    rate = full_prompt_rate(encoder, [i[0] for i in ids[: args.baseline_tokens]], suffix, prefix, args.batch_size)
    print(
        f"plain full-prompt forward ({args.baseline_tokens} tokens): {rate:.0f} tokens/s "
        f"-> {args.tokens / rate:.1f} s for {args.tokens}"
    )

    if not args.skip_finder:
        started = time.perf_counter()
        search = find_rare_tokens([encoder], common_words_from(["photo", "person"]), options)
        seconds = time.perf_counter() - started
        print(
            f"finder end to end: {search.scanned} candidates of {search.vocabulary_size} in {seconds:.1f} s "
            f"= {search.scanned / seconds:.0f} candidates/s; best {search.instance_prompt()!r}"
        )


if __name__ == "__main__":
    main()
