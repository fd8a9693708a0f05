"""Z-Image's tiny random pipeline for tests and the offline demo: a 2-layer Qwen3 32 wide with a byte-level BPE
tokenizer trained offline on a word list (Qwen's chat template and special tokens), a single-stream Z-Image
transformer (2x2 patches), the 16-channel VAE (64 px <-> 32x32x16 latents), Z-Image's flow-matching scheduler."""

from __future__ import annotations

import string

from dreamcore.models.tiny_transformers import TEXT_WIDTH, tiny_vae16
from dreamcore.models.tiny_unets import Seeded

QWEN_TOKENS = 512  # ZImagePipeline.encode_prompt's default length: the encoder's positions must cover it
# Qwen's chat markers; ZImagePipeline wraps every caption in the chat template and encodes the whole turn.
_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Qwen3's template as ZImagePipeline applies it (one user turn, add_generation_prompt, thinking enabled).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
# What the tiny tokenizer learns its merges from: the demo's and the tests' caption words. Its byte-level
# alphabet spells any other text, as Qwen's own tokenizer does.
_WORDS = ("a", "an", "the", "of", "on", "in", "with", "and", "photo", "picture", "painting", "drawing", "dog", "cat",
          "toy", "person", "background", "red", "green", "blue", "teal", "striped", "dotted", "plain", "sks", "subject",
          "style", "image", "user", "assistant", *string.ascii_lowercase, *string.digits)


def qwen_tokenizer(vocab_size: int = 512):
    """A Qwen2TokenizerFast over a byte-level BPE trained here on _WORDS (every word merged: 415 entries), with
    Qwen's chat markers and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(_SPECIAL), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator((*_WORDS, *(f" {word}" for word in _WORDS)), trainer=trainer)  # mid-sentence too
    return Qwen2TokenizerFast(tokenizer_object=bpe, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                              unk_token=None, bos_token=None, model_max_length=131072, chat_template=CHAT_TEMPLATE)


def tiny_qwen3(tokenizer):
    """A 2-layer Qwen3 (grouped-query attention, 4 heads over 2 key/value heads) TEXT_WIDTH wide."""
    from transformers import Qwen3Config, Qwen3Model

    return Qwen3Model(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=QWEN_TOKENS,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    ))


def build_z_image(seeded: Seeded):
    """A tiny ZImagePipeline: Qwen3's penultimate states (real tokens only) feed a 2-layer single-stream
    transformer (one noise and one caption refiner layer) over 2x2 patches of 16-channel latents."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel

    tokenizer = qwen_tokenizer()
    return ZImagePipeline(
        transformer=seeded("transformer", lambda: ZImageTransformer2DModel(
            all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=2, n_refiner_layers=1,
            n_heads=2, n_kv_heads=2, cap_feat_dim=TEXT_WIDTH, axes_dims=[4, 6, 6], axes_lens=[1024, 128, 128])),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False),
        vae=seeded("vae", lambda: tiny_vae16(scaling_factor=0.3611, shift_factor=0.1159)),
        text_encoder=seeded("text_encoder", lambda: tiny_qwen3(tokenizer)),
        tokenizer=tokenizer,
    )
