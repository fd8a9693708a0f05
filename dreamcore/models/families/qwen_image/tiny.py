"""Qwen-Image's tiny random pipeline for tests and the offline demo: a 2-layer Qwen2.5-VL 32 wide (with the one-block
vision tower its class needs) and a Qwen2 byte-level BPE tokenizer trained here on the pipeline's prompt template and
a word list, a tiny AutoencoderKLQwenImage (64 px <-> 32x32x16 latents, one frame, Qwen-Image's latents_mean / std),
a 2-block QwenImageTransformer2DModel, Qwen-Image's dynamically shifted flow-matching scheduler."""

from __future__ import annotations

import json

from dreamcore.models.tiny_transformers import TEXT_WIDTH
from dreamcore.models.tiny_unets import Seeded

# QwenImagePipeline's prompt template (its prompt_template_encode) up to the caption: the tokenizer learns each of
# its words as one token, so the prefix is 34 tokens as with Qwen's own tokenizer, the count the pipeline drops.
TEMPLATE_PREFIX = ("<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, "
                   "text, spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n")
_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Words of the demo's and the tests' captions (any other text is spelled byte by byte, as byte-level BPE does).
_WORDS = ("a photo of sks dog", "a picture of a cat toy on the background", "red green blue teal striped dotted plain",
          "painting drawing person subject style image with and in an assistant")
_POSITIONS = 1024 + 64  # Qwen2.5-VL positions: encode_prompt reads up to 1024 caption tokens after the template


def qwen2_tokenizer(vocab_size: int = 600):
    """A Qwen2Tokenizer over a byte-level BPE trained here (tokenizers) on the template prefix and _WORDS."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    # Qwen2's pre-tokenizer: its split pattern, then bytes as printable characters.
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
                                   r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(_SPECIAL), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([TEMPLATE_PREFIX, *_WORDS], trainer)
    model = json.loads(bpe.to_str())["model"]
    tokenizer = Qwen2Tokenizer(vocab=model["vocab"], merges=[tuple(merge) for merge in model["merges"]])
    tokenizer.add_special_tokens({"additional_special_tokens": list(_SPECIAL[1:])})
    return tokenizer


def tiny_qwen25_vl(tokenizer):
    """A 2-layer Qwen2.5-VL TEXT_WIDTH wide (grouped-query attention, multimodal rotary sections as the real one's
    halves of a head) and a one-block vision tower (the class builds one; text encoding never runs it)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    vocab = len(tokenizer)
    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": vocab, "hidden_size": TEXT_WIDTH, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": _POSITIONS,
                     "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]},
                     "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "bos_token_id": tokenizer.eos_token_id},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                       "out_hidden_size": TEXT_WIDTH, "fullatt_block_indexes": [0]},
        # The image/video placeholder ids past the text vocabulary: no caption holds them.
        image_token_id=vocab, video_token_id=vocab + 1, vision_start_token_id=vocab + 2, vision_end_token_id=vocab + 3,
    )
    return Qwen2_5_VLForConditionalGeneration(config)


def tiny_qwen_vae():
    """A tiny AutoencoderKLQwenImage: 16 latent channels, one 2x spatial downsampling (64 px <-> 32x32), no
    temporal one; Qwen-Image's latents_mean / latents_std (the class defaults)."""
    from diffusers import AutoencoderKLQwenImage

    return AutoencoderKLQwenImage(base_dim=16, z_dim=16, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False])


def build_qwen_image(seeded: Seeded):
    """A tiny QwenImagePipeline; `seeded(component, build)` seeds each part."""
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImagePipeline, QwenImageTransformer2DModel

    tokenizer = qwen2_tokenizer()
    return QwenImagePipeline(
        transformer=seeded("transformer", lambda: QwenImageTransformer2DModel(
            patch_size=2, in_channels=64, out_channels=16, num_layers=2, attention_head_dim=16, num_attention_heads=2,
            joint_attention_dim=TEXT_WIDTH, axes_dims_rope=(4, 6, 6))),
        # Qwen-Image's scheduler: resolution-dependent exponential shift, terminal sigma 0.02.
        scheduler=FlowMatchEulerDiscreteScheduler(base_image_seq_len=256, base_shift=0.5, max_image_seq_len=8192,
                                                  max_shift=0.9, shift=1.0, shift_terminal=0.02,
                                                  time_shift_type="exponential", use_dynamic_shifting=True),
        vae=seeded("vae", tiny_qwen_vae),
        text_encoder=seeded("text_encoder", lambda: tiny_qwen25_vl(tokenizer)),
        tokenizer=tokenizer,
    )
