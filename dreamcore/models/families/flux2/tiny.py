"""Flux.2's tiny random pipelines for tests and the offline demo: Flux2KleinPipeline (klein's shape: a Qwen3 text
encoder read at layers 9, 18 and 27, no guidance embedding) with a byte-level BPE tokenizer trained here on a
word list, a 2-block AutoencoderKLFlux2 (64 px <-> 32x32x16 latents, 2x2 patches normalised by seeded batch-norm
statistics) and a one-block Flux2Transformer2DModel; and dev's shape (Flux2Pipeline: a Mistral-3 encoder read at
layers 10, 20 and 30, a guidance embedding). The real dev's tokenizer is a PixtralProcessor, which transformers
builds only with torchvision (not installed): the tiny dev has a plain byte-level BPE tokenizer with Mistral's
chat template in its place, which is all Flux2Pipeline's text encoding asks of it (apply_chat_template)."""

from __future__ import annotations

import string

from dreamcore.models.tiny_unets import Seeded

QWEN_WIDTH = 16  # the tiny Qwen3's hidden size; the transformer reads 3 layers' states side by side (48 wide)
QWEN_LAYERS = 27  # Flux2KleinPipeline reads hidden states 9, 18 and 27 by default
QWEN_TOKENS = 512  # Flux2KleinPipeline's default max_sequence_length: the encoder's positions cover it
VAE_CHANNELS = 16
# Qwen3's chat template as Flux2KleinPipeline applies it (a user turn, the generation prompt, thinking off).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and "
    "enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
# What the tiny tokenizer learns merges from: the words of the demo's and the tests' captions, the chat template's.
_WORDS = (*string.ascii_lowercase, *string.digits, "a", "an", "the", "of", "on", "in", "with", "and", "photo",
          "picture", "painting", "drawing", "dog", "cat", "toy", "person", "background", "red", "green", "blue", "teal",
          "striped", "dotted", "plain", "sks", "subject", "style", "image", "user", "assistant", "think")


def qwen2_tokenizer():
    """A Qwen2TokenizerFast over a byte-level BPE trained here (its 256 byte symbols spell any text) with Qwen's
    special tokens and a chat template."""
    from transformers import Qwen2TokenizerFast

    bpe = _byte_level_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer = Qwen2TokenizerFast(tokenizer_object=bpe, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                                   unk_token=None, bos_token=None, model_max_length=QWEN_TOKENS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


# Mistral's chat template as Flux2Pipeline applies it (a system message and a user turn, text parts only).
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}[SYSTEM_PROMPT]"
    "{% for part in message['content'] %}{{ part['text'] }}{% endfor %}[/SYSTEM_PROMPT]{% elif message['role'] == "
    "'user' %}[INST]{% for part in message['content'] %}{{ part['text'] }}{% endfor %}[/INST]{% endif %}{% endfor %}"
)
MISTRAL_LAYERS = 30  # Flux2Pipeline reads hidden states 10, 20 and 30 by default


def _byte_level_bpe(special_tokens: list[str]):
    """A byte-level BPE (its 256 byte symbols spell any text) with merges learned from the caption words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(_WORDS, trainers.BpeTrainer(
        vocab_size=320, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    return bpe


def mistral_tokenizer():
    """A PreTrainedTokenizerFast over a byte-level BPE with Mistral's special tokens and chat template."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(["<pad>", "<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]",
                                          "[/SYSTEM_PROMPT]", "[IMG]"]),
        pad_token="<pad>", bos_token="<s>", eos_token="</s>", model_max_length=QWEN_TOKENS)
    tokenizer.chat_template = MISTRAL_CHAT_TEMPLATE
    return tokenizer


def tiny_mistral3(tokenizer):
    """A Mistral3ForConditionalGeneration whose language model is MISTRAL_LAYERS deep and QWEN_WIDTH wide (its
    one-layer Pixtral vision tower is never run: captions have no images)."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration, MistralConfig, PixtralVisionConfig

    return Mistral3ForConditionalGeneration(Mistral3Config(
        text_config=MistralConfig(vocab_size=len(tokenizer), hidden_size=QWEN_WIDTH, intermediate_size=32,
                                  num_hidden_layers=MISTRAL_LAYERS, num_attention_heads=2, num_key_value_heads=1,
                                  head_dim=8, max_position_embeddings=QWEN_TOKENS, pad_token_id=tokenizer.pad_token_id),
        vision_config=PixtralVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, head_dim=8, image_size=32, patch_size=16),
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"), spatial_merge_size=1, vision_feature_layer=-1,
    ))


def tiny_qwen3(tokenizer):
    """A Qwen3ForCausalLM QWEN_LAYERS deep and QWEN_WIDTH wide (2 heads, 1 key-value head)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    return Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=QWEN_WIDTH, intermediate_size=32, num_hidden_layers=QWEN_LAYERS,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=QWEN_TOKENS,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    ))


def tiny_flux2_vae():
    """A 2-block AutoencoderKLFlux2 (64 px <-> 32x32x16) whose batch-norm statistics are drawn (seeded), so the
    patch normalisation is not the identity."""
    import torch
    from diffusers import AutoencoderKLFlux2

    vae = AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(32, 64), layers_per_block=1, latent_channels=VAE_CHANNELS, sample_size=64,
    )
    with torch.no_grad():
        vae.bn.running_mean.copy_(0.1 * torch.randn_like(vae.bn.running_mean))
        vae.bn.running_var.copy_(0.5 + torch.rand_like(vae.bn.running_var))
    return vae


def _transformer(seeded: Seeded, guidance_embeds: bool):
    """A one-double-block, one-single-block Flux2Transformer2DModel over the tiny VAE's patches and 3 layers' states."""
    from diffusers import Flux2Transformer2DModel

    return seeded("transformer", lambda: Flux2Transformer2DModel(
        patch_size=1, in_channels=4 * VAE_CHANNELS, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=3 * QWEN_WIDTH, timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4), guidance_embeds=guidance_embeds))


def _scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                           base_image_seq_len=256, max_image_seq_len=4096)


def build_flux2(seeded: Seeded):
    """A tiny Flux2KleinPipeline (klein-base shape: CFG by a second pass, no guidance embedding)."""
    from diffusers import Flux2KleinPipeline

    tokenizer = qwen2_tokenizer()
    return Flux2KleinPipeline(
        transformer=_transformer(seeded, guidance_embeds=False), scheduler=_scheduler(),
        vae=seeded("vae", tiny_flux2_vae), text_encoder=seeded("text_encoder", lambda: tiny_qwen3(tokenizer)),
        tokenizer=tokenizer, is_distilled=False,
    )


def build_flux2_dev(seeded: Seeded):
    """A tiny Flux2Pipeline (dev shape: a Mistral-3 encoder, a guidance embedding)."""
    from diffusers import Flux2Pipeline

    tokenizer = mistral_tokenizer()
    return Flux2Pipeline(
        transformer=_transformer(seeded, guidance_embeds=True), scheduler=_scheduler(),
        vae=seeded("vae", tiny_flux2_vae), text_encoder=seeded("text_encoder", lambda: tiny_mistral3(tokenizer)),
        tokenizer=tokenizer,
    )
