"""Kolors' tiny random pipeline for tests and the offline demo: a 2-layer ChatGLM3 32 wide with a sentencepiece
tokenizer trained offline on a word list, an SDXL-shaped UNet that projects its states (as the tiny SDXL: 64 px
<-> 32x32x4 latents, 6 size ids), Kolors' scheduler."""

from __future__ import annotations

import io
import os
import string
import tempfile
import weakref

from dreamcore.models.tiny_unets import TEXT_HIDDEN, Seeded, sdxl_unet, vae

# The tiny ChatGLM's hidden size: its states' width and the pooled embedding's (the tiny SDXL UNet's pooled width).
CHATGLM_WIDTH = TEXT_HIDDEN
CHATGLM_TOKENS = 256  # KolorsPipeline.encode_prompt's sequence length (its positions must cover it)
# What the tiny tokenizer learns its pieces from: the alphabet and words of the demo's and the tests' captions.
# byte_fallback spells any other text byte by byte, as ChatGLM3's own tokenizer does.
_WORDS = (*string.ascii_lowercase, *string.digits, "a", "an", "the", "of", "on", "in", "with", "and", "photo",
          "picture", "painting", "drawing", "dog", "cat", "toy", "person", "background", "red", "green", "blue", "teal",
          "striped", "dotted", "plain", "sks", "subject", "style", "image")


def chatglm_tokenizer(vocab_size: int = 320):
    """A ChatGLMTokenizer over a sentencepiece BPE model trained here (byte fallback: it spells any text).

    ChatGLMTokenizer reads its model from a file and copies that file when saved, so the model lives in a
    temporary file removed with the tokenizer.
    """
    import sentencepiece
    from diffusers.pipelines.kolors import ChatGLMTokenizer

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_WORDS), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2,
    )
    handle, path = tempfile.mkstemp(prefix="chatglm-", suffix=".model")
    with os.fdopen(handle, "wb") as file:
        file.write(model.getvalue())
    tokenizer = ChatGLMTokenizer(path)
    weakref.finalize(tokenizer, os.remove, path)
    return tokenizer


def tiny_chatglm(tokenizer):
    """A 2-layer ChatGLM3 (multi-query attention with 2 groups, rotary positions as ChatGLM3's), CHATGLM_WIDTH wide."""
    from diffusers.pipelines.kolors import ChatGLMModel
    from diffusers.pipelines.kolors.text_encoder import ChatGLMConfig

    import torch
    from diffusers.pipelines.kolors.text_encoder import RMSNorm

    config = ChatGLMConfig(
        num_layers=2, padded_vocab_size=len(tokenizer), hidden_size=CHATGLM_WIDTH, ffn_hidden_size=37, kv_channels=8,
        num_attention_heads=4, seq_length=CHATGLM_TOKENS, multi_query_attention=True, multi_query_group_num=2,
        add_qkv_bias=True, original_rope=True, use_cache=False,
    )
    # empty_init=False: ChatGLM skips initialisation by default (it expects a checkpoint); its RMSNorm weights
    # start uninitialised either way, so they are set to one here (random bytes would differ run to run).
    model = ChatGLMModel(config, empty_init=False)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, RMSNorm):
                module.weight.fill_(1.0)
    return model


def build_kolors(seeded: Seeded):
    """A tiny KolorsPipeline: ChatGLM3 states projected into an SDXL-shaped UNet (text_proj, as Kolors' 4096 -> 2048),
    its pooled state and SDXL's six size ids as added conditioning, Kolors' Euler scheduler (1100 steps)."""
    from diffusers import EulerDiscreteScheduler, KolorsPipeline

    tokenizer = chatglm_tokenizer()
    return KolorsPipeline(
        vae=vae(seeded, scaling_factor=0.13025),
        text_encoder=seeded("text_encoder", lambda: tiny_chatglm(tokenizer)),
        tokenizer=tokenizer,
        unet=sdxl_unet(seeded, 2 * CHATGLM_WIDTH, time_ids=6, encoder_hid_dim_type="text_proj",
                       encoder_hid_dim=CHATGLM_WIDTH),
        scheduler=EulerDiscreteScheduler(num_train_timesteps=1100, beta_start=0.00085, beta_end=0.014,
                                         beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1),
        force_zeros_for_empty_prompt=False,
    )
