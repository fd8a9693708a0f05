"""Every SimpleTuner config.json / multidatabackend.json key dreamcore does not take as a field, in one of two classes.

- REFUSED: the key would change training and dreamcore does not do what it asks. Loading a config that sets it to
  anything but a value matching what dreamcore does (SimpleTuner's default, or the values in MATCHING_VALUES) is a
  ConfigError naming the key and this reason.
- IGNORED: the key cannot change the trained weights (hub upload, model cards, logging, speed and memory knobs
  with the same arithmetic, where caches live, validation-image-only settings). It is reported as
  "ignored: cannot change the trained weights" and dropped.

Every other SimpleTuner key is honoured: a field of TrainingConfig / DatasetSpec (SimpleTuner's spelling or an
alias), or a top-level dataset default (DATASET_DEFAULT_KEYS), or a dataset's disabled/disable switch. The key
list these tables cover is tests/fixtures/simpletuner/keys.json (captured from SimpleTuner's argument parser
with scripts/capture_simpletuner_keys.py); docs/simpletuner-keys.md is generated from this module.
"""

from __future__ import annotations

from typing import Any

# The SimpleTuner revision the key list was captured from (tests/fixtures/simpletuner/keys.json).
SIMPLETUNER_COMMIT = "bc8e6ab7738ce457a2ed8eb2d26cadd91c6442cb"
DREAMCORE_FAMILIES = ("sd1x, sd2x, sdxl, sd3, flux (and Kontext), kolors, deepfloyd (stages I and II), qwen_image, "
                      "chroma, lumina2, z_image, flux2")

# Top-level config.json keys SimpleTuner uses as the default of every image-like dataset that does not set
# them (ImageBackendConfig.from_dict / factory: backend.get(key, args.key)). crop* were top-level too until
# SimpleTuner moved them into the datasets (its commit 4518470b0); old configs still carry them.
DATASET_DEFAULT_KEYS: tuple[str, ...] = (
    "resolution", "resolution_type", "minimum_image_size", "maximum_image_size", "target_downsample_size",
    "caption_strategy", "instance_prompt", "crop", "crop_aspect", "crop_style", "crop_aspect_buckets",
)
# Dataset keys the loader reads itself (they are no DatasetSpec field).
DATASET_LOADER_KEYS: tuple[str, ...] = ("disabled", "disable")


def _group(reason: str, keys: str) -> dict[str, str]:
    return {key: reason for key in keys.split()}


def _family(family: str, keys: str) -> dict[str, str]:
    return _group(f"only for SimpleTuner's {family} models; dreamcore trains {DREAMCORE_FAMILIES}", keys)


_CONTROLNET = "ControlNet training is a different kind of training; dreamcore trains Dreambooth LoRA/LyCORIS/full"
_OTHER_TRAINING = "{} is a different kind of training; dreamcore trains Dreambooth LoRA/LyCORIS/full"
_EXTRA_LOSS = "an extra training objective dreamcore does not implement"
_LAUNCH = ("a launch setting: dreamcore launches num_processes processes on each of num_machines machines itself "
           "(torchrun / accelerate launch)")
_ONE_MODEL = "dreamcore loads every component from pretrained_model_name_or_path"

REFUSED: dict[str, str] = {
    **_group(_CONTROLNET, "controlnet control controlnet_custom_config controlnet_model_name_or_path ramtorch_controlnet"),
    **_group(_OTHER_TRAINING.format("Distillation"), "distillation_method distillation_config"),
    **_group(_OTHER_TRAINING.format("Grounding (spatial annotations)"),
             "max_grounding_entities pretrained_grounding_model_name_or_path"),
    **_group(_OTHER_TRAINING.format("Text-encoder training"),
             "train_text_encoder text_encoder_lr text_encoder_limit freeze_encoder_before freeze_encoder_after "
             "freeze_encoder_strategy layer_freeze_strategy save_text_encoder"),
    **_group("an adapter kind dreamcore does not train (peft LoRA or LyCORIS via lycoris_config)",
             "use_dora peft_lora_mode singlora_ramp_up_steps slider_lora_target init_lokr_norm"),
    **_group("start from earlier weights with init_weights (a LoRA file or export folder)",
             "init_lora init_lora_step init_lora_ema"),
    **_group("assistant (training-time helper) LoRAs are not supported (Z-Image turbo: set disable_assistant_lora "
             "true to train without one)",
             "assistant_lora_path assistant_lora_strength assistant_lora_inference_strength"),
    **_group("dreamcore resumes its own newest checkpoint (SimpleTuner's 'latest'); start from other weights "
             "with init_weights", "resume_from_checkpoint"),
    **_group(_EXTRA_LOSS,
             "diff2flow_enabled diff2flow_loss mixflow_enabled mixflow_gamma soft_min_snr_sigma_data "
             "use_soft_min_snr snr_weight masked_loss_probability xm_enabled xm_candidate_count xm_training_target "
             "xm_selection_scope xm_block_size nextlat_enabled nextlat_block_index nextlat_weight nextlat_state_loss "
             "nextlat_kl_weight irepa_enabled irepa_spatial_norm_alpha irepa_projector_kernel_size crepa_enabled "
             "crepa_block_index crepa_lambda crepa_adjacent_distance crepa_adjacent_tau crepa_encoder "
             "crepa_encoder_frames_batch_size crepa_use_backbone_features crepa_feature_source crepa_self_flow "
             "crepa_teacher_block_index crepa_self_flow_mask_ratio crepa_encoder_image_size crepa_drop_vae_encoder "
             "crepa_normalize_by_frames crepa_normalize_neighbour_sum crepa_spatial_align crepa_use_tae "
             "crepa_scheduler crepa_warmup_steps crepa_decay_steps crepa_lambda_end crepa_power crepa_cutoff_step "
             "crepa_similarity_threshold crepa_similarity_ema_decay crepa_threshold_mode twinflow_enabled "
             "twinflow_target_step_count internal_guidance_enabled internal_guidance_loss_weight "
             "internal_guidance_block_index layersync_enabled layersync_student_block layersync_teacher_block "
             "layersync_lambda urepa_enabled urepa_lambda urepa_manifold_weight urepa_model urepa_encoder_image_size "
             "urepa_use_tae urepa_scheduler urepa_warmup_steps urepa_decay_steps urepa_lambda_end urepa_power "
             "urepa_cutoff_step urepa_similarity_threshold urepa_similarity_ema_decay urepa_threshold_mode"),
    **_group("scheduled sampling here is scheduled_sampling_* with a one-step sampler; this variant is not "
             "implemented", "scheduled_sampling_strategy scheduled_sampling_order scheduled_sampling_reflexflow "
             "scheduled_sampling_reflexflow_alpha scheduled_sampling_reflexflow_beta1 "
             "scheduled_sampling_reflexflow_beta2"),
    **_group("timestep sampling: dreamcore draws training timesteps uniformly (flow matching: flow_* keys); "
             "this schedule is not implemented",
             "flow_cubic_schedule_weights flow_custom_timesteps flow_timesteps_mode flux_fast_schedule "
             "disable_segmented_timestep_sampling timestep_bias_strategy timestep_bias_begin timestep_bias_end "
             "timestep_bias_multiplier timestep_bias_portion training_scheduler_timestep_spacing "
             "rescale_betas_zero_snr"),
    **_group("noise offset / input perturbation are not implemented",
             "offset_noise noise_offset noise_offset_probability input_perturbation input_perturbation_steps"),
    **_group("dreamcore's optimizers take adam_beta1/adam_beta2/adam_weight_decay/adam_epsilon; this optimizer "
             "setting is not implemented", "optimizer_beta1 optimizer_beta2 prodigy_steps"),
    **_group("the learning rate is learning_rate as given; scaling by batch size is not implemented",
             "lr_scale lr_scale_sqrt"),
    **_group("dreamcore trains max_train_steps optimiser steps; epochs do not bound training (set 0)",
             "num_train_epochs strict_epoch_limit"),
    **_group("precision: dreamcore sets it through mixed_precision, base_model_precision and cache_dtype",
             "base_model_default_dtype vae_dtype gradient_precision disable_tf32 quantize_activations "
             "quantization_config"),
    **_group("SDNQ quantisation is not supported; use base_model_precision (quanto, torchao, bitsandbytes)",
             "sdnq_weights_dtype sdnq_quantized_matmul_dtype sdnq_group_size sdnq_use_quantized_matmul "
             "sdnq_compile_mode sdnq_use_static_quantization sdnq_use_stochastic_rounding sdnq_dequantize_fp32 "
             "sdnq_use_svd sdnq_use_hadamard sdnq_svd_rank sdnq_svd_steps sdnq_hadamard_group_size "
             "sdnq_modules_to_not_convert sdnq_modules_to_not_use_matmul sdnq_modules_dtype_dict "
             "sdnq_modules_quant_config"),
    **_group("attention kernels other than diffusers' default change the arithmetic and are not supported",
             "attention_mechanism sageattention_usage sla_config fuse_qkv_projections fused_qkv_projections"),
    **_group("VAE tiling changes the cached latents; dreamcore encodes whole images",
             "vae_enable_tiling vae_enable_patch_conv vae_enable_temporal_roll"),
    **_group("dreamcore always trains from its VAE cache (one encoding per image and crop)",
             "vae_cache_ondemand vae_cache_disable"),
    **_group("RamTorch layers are not supported", "ramtorch ramtorch_target_modules ramtorch_text_encoder "
             "ramtorch_vae ramtorch_transformer_percent ramtorch_text_encoder_percent ramtorch_disable_sync_hooks "
             "ramtorch_disable_extensions"),
    **_group("token-routing / block-skipping training (TREAD, diffusion blocks) is not implemented",
             "tread_config diffusion_blocks_config"),
    **_group("EMA warm-up is not implemented (EMA: use_ema, ema_decay, ema_update_interval)", "ema_warmup_steps"),
    **_group(_ONE_MODEL, "pretrained_vae_model_name_or_path pretrained_transformer_model_name_or_path "
             "pretrained_transformer_subfolder pretrained_unet_model_name_or_path pretrained_unet_subfolder "
             "pretrained_t5_model_name_or_path pretrained_gemma_model_name_or_path "
             "qwen_text_encoder_model_name_or_path revision variant"),
    **_group("dreamcore never runs code shipped with a model", "trust_remote_code"),
    **_group("DeepSpeed is not installed with dreamcore (accelerate's DeepSpeed plugin needs it), so it cannot be "
             "honoured or tested; train data parallel with num_processes / num_machines", "deepspeed_config"),
    **_group(_LAUNCH, "same_network accelerate_config accelerate_extra_args context_parallel_size "
             "context_parallel_comm_strategy "
             "seed_for_each_device dynamo_backend dynamo_mode dynamo_fullgraph dynamo_dynamic "
             "dynamo_use_regional_compilation"),
    **_group("dataset sampling: dreamcore samples datasets by probability and repeats; this mode is not "
             "implemented", "data_backend_sampling conditioning_multidataset_sampling"),
    **_group("dreamcore keeps every image, batching small buckets short (SimpleTuner's disable_bucket_pruning "
             "true); pruning is not implemented", "disable_bucket_pruning"),
    **_group("aspect buckets are sized by aspect_bucket_alignment; rounding aspects is not implemented",
             "aspect_bucket_rounding"),
    **_group("caption handling: captions come from caption_strategy only", "prepend_instance_prompt "
             "only_instance_prompt parquet_caption_column parquet_filename_column"),
    **_group("upscaling small images is not implemented (minimum_image_size excludes them)", "max_upscale_threshold"),
    **_group("image filtering and deletion are not done: dreamcore never deletes your files",
             "delete_unwanted_images delete_problematic_images delete_nsfw_images enable_nsfw_check "
             "nsfw_check_models nsfw_check_min_votes nsfw_check_backend_types nsfw_check_sample_types "
             "nsfw_check_video_frame_count nsfw_check_video_frame_selection nsfw_check_video_min_flagged_frames "
             "ignore_missing_files"),
    **_family("audio", "audio_channels audio_duration_interval audio_max_duration_seconds audio_min_duration_seconds "
              "audio_truncation_mode audio_flow_schedule_shift"),
    **_family("video", "framerate"),
    **_family("ACE-Step", "acestep_lora_target lyrics_embedder_train lyrics_embedder_optimizer lyrics_embedder_lr "
              "lyrics_embedder_lr_scheduler"),
    **_family("Cosmos 3", "cosmos3_reasoner_component cosmos3_generator_component"),
    **_group("Flux.2 captions encode at the hidden layers its stock pipelines read (klein 9, 18, 27; dev 10, 20, 30): "
             "those its transformer was trained on and the pipelines draw with; other layers are not implemented",
             "custom_text_encoder_intermediary_layers"),
    **_family("HiDream", "hidream_use_load_balancing_loss hidream_load_balancing_loss_weight"),
    **_family("Ideogram", "ideogram_auto_json ideogram_validation ideogram_prompt_upsample ideogram_fp8_base_upcast "
              "ideogram_prompt_enhancer_head_id ideogram_schedule_mu ideogram_schedule_std "
              "ideogram_load_unconditional_transformer ideogram_uncond_ramtorch"),
    **_family("Krea 2", "krea2_reference_latents"),
    **_family("LTX-Video", "ltx_train_mode ltx_i2v_prob ltx_partial_noise_fraction ltx_protect_first_frame "
              "ltx2_intrinsic_conditioning ltx2_first_frame_conditioning_probability "
              "ltx2_prefix_conditioning_probability ltx2_suffix_conditioning_probability "
              "ltx2_mask_conditioning_probability ltx2_prefix_conditioning_frames ltx2_suffix_conditioning_frames "
              "ltx2_reference_spatial_scale_factor ltx2_reference_temporal_scale_factor"),
    **_family("MiniMax", "minimax_h3_reference_mode minimax_h3_target_mode minimax_h3_sparse_attention "
              "minimax_h3_sparse_block_shape minimax_h3_sparse_video_kv_fraction minimax_h3_sparse_share_heads "
              "minimax_h3_sparse_start_layer minimax_music_train_component minimax_music_lm_adapter "
              "minimax_music_lm_adapter_strength minimax_music_lm_precache_mode minimax_music_lm_max_frames"),
    **_family("Sana", "sana_complex_human_instruction"),
    **_family("Wan", "wan_force_2_1_time_embedding enable_chunked_feed_forward feed_forward_chunk_size "
              "musubi_blocks_to_swap musubi_block_swap_device"),
    **_family("four-text-encoder", "text_encoder_4_precision"),
}

_WEIGHTS = "cannot change the trained weights"
IGNORED: dict[str, str] = {
    **_group("hub upload", "push_to_hub push_checkpoints_to_hub push_to_hub_background hub_model_id "
             "publishing_config post_checkpoint_script post_upload_script"),
    **_group("model card metadata", "model_card_note model_card_private model_card_safe_for_work modelspec_comment "
             "lora_format"),
    **_group("logging and debugging output", "debug_aspect_buckets debug_dataset_loader print_filenames "
             "print_sampler_statistics tracker_image_layout custom_tracker webhook_reporting_interval"),
    **_group("FSDP1 / accelerate loading knobs: dreamcore's FSDP2 (fsdp_enable) gathers and loads as torch's "
             "fully_shard does", "fsdp_cpu_ram_efficient_loading fsdp_limit_all_gathers"),
    **_group("launcher and SimpleTuner bookkeeping", "local_rank i_know_what_i_am_doing override_dataset_config "
             "find_unused_parameters"),
    **_group("where caches live: dreamcore caches under storage_root or each dataset's cache_dir_vae / cache_dir",
             "cache_dir cache_dir_text cache_dir_vae compress_disk_cache preserve_data_backend_cache "
             "vae_cache_scan_behaviour text_embed_full_cache text_cache_ondemand text_cache_disable "
             "aspect_bucket_disable_rebuild skip_file_discovery metadata_update_interval"),
    **_group("speed and memory only (same arithmetic)", "max_workers torch_num_threads aspect_bucket_worker_count "
             "image_processing_batch_size read_batch_size write_batch_size text_encoder_batch_size "
             "enable_multiprocessing dataloader_prefetch dataloader_prefetch_qlen aws_max_pool_connections "
             "keep_vae_loaded vae_enable_slicing unet_attention_slice accelerator_cache_clear_interval "
             "delete_model_after_load fully_unload_text_encoder offload_during_startup offload_during_save "
             "offload_param_path set_grads_to_none group_offload_text_encoder group_offload_vae "
             "gradient_checkpointing_backend "
             "gradient_checkpointing_interval gradient_checkpointing_segment_stride "
             "gradient_checkpointing_offload_attention gradient_checkpointing_offload_pin_memory_max_buckets "
             "gradient_checkpointing_offload_prefetch ema_cpu_only ema_foreach_disable quantize_via "
             "optimizer_cpu_offload_method optimizer_offload_gradients fuse_optimizer optimizer_release_gradients"),
    **_group("checkpoint housekeeping (dreamcore: checkpointing_steps, checkpoints_total_limit)",
             "checkpoint_epoch_interval checkpointing_rolling_steps checkpoints_rolling_total_limit "
             "checkpointing_use_tempdir delete_invalid_checkpoints disk_low_threshold disk_low_action disk_low_script"),
    **_group("validation images only (dreamcore validates with validation_* fields it has)",
             "validation_adapter_path validation_adapter_name validation_adapter_strength validation_adapter_mode "
             "validation_adapter_config validation_disable_unconditional validation_epoch_interval "
             "validation_external_script validation_external_background validation_guidance_real "
             "validation_guidance_skip_layers validation_guidance_skip_layers_start "
             "validation_guidance_skip_layers_stop validation_guidance_skip_scale validation_image_format "
             "validation_image_quality validation_input validation_lycoris_strength validation_method "
             "validation_multigpu validation_no_cfg_until_timestep validation_noise_scheduler "
             "validation_num_video_frames validation_on_startup validation_prompt_library validation_randomize "
             "validation_seed_source validation_stitch_input_location validation_using_datasets "
             "validate_after_epoch validate_after_step user_prompt_library inference_scheduler_timestep_spacing "
             "enable_watermark ema_validation validation_internal_guidance_scale validation_lyrics "
             "validation_audio_duration validation_audio_only validation_ltx2_video_conditioning "
             "ltx2_validation_audio_guidance ltx2_validation_pipeline_mode ltx2_validation_spatial_upsampler_model "
             "ltx2_validation_spatial_upsampler_filename deepfloyd_validation_pipeline_mode "
             "deepfloyd_validation_stage2_model deepfloyd_validation_stage3_mode "
             "deepfloyd_validation_stage3_model deepfloyd_validation_stage1_num_inference_steps "
             "deepfloyd_validation_stage2_num_inference_steps deepfloyd_validation_stage1_guidance "
             "deepfloyd_validation_stage2_guidance deepfloyd_validation_stage3_guidance "
             "deepfloyd_validation_stage3_noise_level pixart_validation_pipeline_mode pixart_validation_stage1_model "
             "pixart_validation_stage2_model sdxl_validation_pipeline_mode sdxl_validation_stage1_model "
             "sdxl_validation_stage2_model wan_validation_load_other_stage"),
    **_group("eval-loss bookkeeping only", "eval_epoch_interval eval_dataset_pooling eval_loss_disable"),
}

_DATASET_OTHER_SOURCE = "this dataset source is not supported (dreamcore: type local, fsspec, huggingface or aws)"
DATASET_REFUSED: dict[str, str] = {
    **_group(_DATASET_OTHER_SOURCE, "webshart csv_file csv_cache_dir csv_caption_column csv_url_column "
             "csv_hash_filenames csv_shorten_filenames"),
    **_group("video and audio datasets are not supported", "video audio video_column"),
    **_group(_OTHER_TRAINING.format("Grounding (spatial annotations)"), "grounding"),
    **_group(_OTHER_TRAINING.format("Distillation"), "distillation_type"),
    **_group("generated conditioning (ControlNet-style inputs) is not supported; masks: conditioning_type mask",
             "conditioning conditioning_config source_dataset_id"),
    **_group("image/conditioning-embed caches belong to other model kinds", "image_embeds conditioning_image_embeds "
             "cache_dir_conditioning_image_embeds conditioning_image_embed_batch_size"),
    **_group("per-dataset batch sizes are not supported (train_batch_size is global)", "train_batch_size"),
    **_group("dataset scheduling by epoch or step is not implemented", "start_epoch start_step end_epoch end_step"),
    **_group("aspect-ratio limits are not implemented", "minimum_aspect_ratio maximum_aspect_ratio"),
    **_group("dataset sample limits are not implemented", "max_num_samples"),
    **_group("per-dataset timestep offsets are not implemented", "timestep_sampling_offset"),
    **_group("slider training is a different kind of training", "slider_strength"),
    **_group("caption handling: captions come from caption_strategy only", "caption_shuffle caption_filter_list "
             "prepend_instance_prompt only_instance_prompt disable_multiline_split"),
    **_group("upscaling small images is not implemented (minimum_image_size excludes them)", "max_upscale_threshold"),
    **_group("image deletion is not done: dreamcore never deletes your files",
             "delete_unwanted_images delete_problematic_images delete_nsfw_images"),
    **_group("VAE cache modes: dreamcore always trains from its VAE cache", "vae_cache_ondemand vae_cache_disable "
             "vae_cache_clear_each_epoch"),
}
DATASET_IGNORED: dict[str, str] = {
    **_group("where and how caches are written", "compress_cache preserve_data_backend_cache skip_file_discovery "
             "metadata_update_interval hash_filenames shorten_filenames scan_for_errors"),
    **_group("speed only (same arithmetic)", "write_batch_size text_encoder_batch_size text_cache_ondemand "
             "text_cache_disable"),
    **_group("validation images only", "disable_validation"),
}

# Values of a refused key that mean what dreamcore does anyway, where SimpleTuner's default is not one of them.
MATCHING_VALUES: dict[str, tuple[Any, ...]] = {
    "num_train_epochs": (0,),
    "disable_bucket_pruning": (True,),
    "pretrained_vae_model_name_or_path": (),
    "resume_from_checkpoint": ("latest",),
}
# Where SimpleTuner's default differs from what dreamcore does, the default is no free pass.
DEFAULT_DIFFERS = frozenset({"disable_bucket_pruning", "pretrained_vae_model_name_or_path"})

# SimpleTuner's default of each refused config.json key that has one (not None/false/empty), as captured in
# tests/fixtures/simpletuner/keys.json: setting a refused key to its default asks for nothing dreamcore lacks.
SIMPLETUNER_DEFAULTS: dict[str, Any] = {
    'acestep_lora_target': 'attn_qkv+linear_qkv',
    'aspect_bucket_rounding': 2,
    'assistant_lora_strength': 1.0,
    'attention_mechanism': 'diffusers',
    'audio_channels': 1,
    'audio_duration_interval': 3.0,
    'audio_truncation_mode': 'beginning',
    'base_model_default_dtype': 'bf16',
    'conditioning_multidataset_sampling': 'random',
    'context_parallel_comm_strategy': 'allgather',
    'context_parallel_size': 1,
    'cosmos3_generator_component': 'auto',
    'cosmos3_reasoner_component': 'auto',
    'crepa_adjacent_distance': 1,
    'crepa_adjacent_tau': 1.0,
    'crepa_block_index': 8,
    'crepa_encoder': 'dinov2_vitg14',
    'crepa_encoder_frames_batch_size': -1,
    'crepa_encoder_image_size': 518,
    'crepa_feature_source': 'encoder',
    'crepa_lambda': 0.5,
    'crepa_normalize_by_frames': True,
    'crepa_power': 1.0,
    'crepa_scheduler': 'constant',
    'crepa_self_flow_mask_ratio': 0.1,
    'crepa_similarity_ema_decay': 0.99,
    'crepa_spatial_align': True,
    'crepa_threshold_mode': 'permanent',
    'data_backend_sampling': 'auto-weighting',
    'dynamo_backend': 'no',
    'flow_timesteps_mode': 'fixed-list',
    'freeze_encoder_after': 17,
    'freeze_encoder_before': 12,
    'freeze_encoder_strategy': 'after',
    'ideogram_auto_json': True,
    'ideogram_prompt_enhancer_head_id': 'diffusers/qwen3-vl-8b-instruct-lm-head',
    'ideogram_schedule_std': 1.5,
    'internal_guidance_loss_weight': 0.5,
    'irepa_projector_kernel_size': 3,
    'irepa_spatial_norm_alpha': 0.6,
    'layersync_lambda': 0.2,
    'ltx2_prefix_conditioning_frames': 1,
    'ltx2_reference_temporal_scale_factor': 1,
    'ltx2_suffix_conditioning_frames': 1,
    'ltx_i2v_prob': 0.1,
    'ltx_partial_noise_fraction': 0.05,
    'ltx_train_mode': 'i2v',
    'masked_loss_probability': 1.0,
    'minimax_h3_reference_mode': 'vanilla',
    'minimax_h3_sparse_attention': 'disabled',
    'minimax_h3_sparse_block_shape': '1,8,16',
    'minimax_h3_sparse_video_kv_fraction': 0.5,
    'minimax_h3_target_mode': 'auto',
    'minimax_music_lm_adapter_strength': 1.0,
    'minimax_music_lm_precache_mode': 'text-only',
    'minimax_music_train_component': 'transformer',
    'mixflow_gamma': 0.8,
    'musubi_block_swap_device': 'cpu',
    'nextlat_block_index': -1,
    'nextlat_state_loss': 'smooth_l1',
    'noise_offset': 0.1,
    'noise_offset_probability': 0.25,
    'nsfw_check_backend_types': 'all',
    'nsfw_check_min_votes': 2,
    'nsfw_check_sample_types': 'image,conditioning',
    'nsfw_check_video_frame_count': 3,
    'nsfw_check_video_frame_selection': 'uniform',
    'nsfw_check_video_min_flagged_frames': 1,
    'num_train_epochs': 1,
    'peft_lora_mode': 'standard',
    'pretrained_transformer_subfolder': 'transformer',
    'pretrained_unet_subfolder': 'unet',
    'pretrained_vae_model_name_or_path': 'madebyollin/sdxl-vae-fp16-fix',
    'ramtorch_disable_extensions': True,
    'ramtorch_text_encoder_percent': 100,
    'ramtorch_transformer_percent': 100,
    'resume_from_checkpoint': 'latest',
    'sageattention_usage': 'inference',
    'same_network': True,
    'sana_complex_human_instruction': "Given a user prompt, generate an 'Enhanced prompt' that provides detailed visual descriptions suitable for image generation. Evaluate the level of detail in the user prompt:\n- If the prompt is simple, focus on adding specifics about colors, shapes, sizes, textures, and spatial relationships to create vivid and concrete scenes.\n- Do not add detail that is not in the original prompt! Do not mention colors if the User Prompt does not!\n- If the prompt is already detailed, refine and enhance the existing details slightly without overcomplicating.\n- If the prompt contains explicit material, do not remove this information from the output, which would damage the performance of downstream classifiers.\nHere are examples of how to transform or refine prompts:\n- User Prompt: A cat sleeping -> Enhanced: A cat sleeping peacefully, showcasing the joy of pet ownership. Cute floof kitty cat gatto.\n- User Prompt: A busy city street -> Enhanced: A bustling city street scene featuring a crowd of people.\nPlease generate only the enhanced description for the prompt below and avoid including any additional commentary or evaluations:\nUser Prompt: ",
    'scheduled_sampling_order': 2,
    'scheduled_sampling_reflexflow_alpha': 1.0,
    'scheduled_sampling_reflexflow_beta1': 10.0,
    'scheduled_sampling_reflexflow_beta2': 1.0,
    'scheduled_sampling_strategy': 'uniform',
    'sdnq_compile_mode': 'auto',
    'sdnq_quantized_matmul_dtype': 'auto',
    'seed_for_each_device': True,
    'snr_weight': 1.0,
    'text_encoder_4_precision': 'no_change',
    'text_encoder_limit': 100,
    'timestep_bias_end': 1000,
    'timestep_bias_multiplier': 1.0,
    'timestep_bias_portion': 0.25,
    'training_scheduler_timestep_spacing': 'trailing',
    'twinflow_target_step_count': 1,
    'urepa_encoder_image_size': 518,
    'urepa_lambda': 0.5,
    'urepa_manifold_weight': 3.0,
    'urepa_model': 'dinov2_vitg14',
    'urepa_power': 1.0,
    'urepa_scheduler': 'constant',
    'urepa_similarity_ema_decay': 0.99,
    'urepa_threshold_mode': 'permanent',
    'vae_dtype': 'bf16',
    'xm_candidate_count': 1,
    'xm_selection_scope': 'sample',
    'xm_training_target': 'noise',
}
DATASET_DEFAULTS: dict[str, Any] = {"split": "train", "image_column": "image", "video_column": "video"}

def accepted_keys(model: Any) -> set[str]:
    """A model's field names and their alias spellings."""
    keys = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        alias = info.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            keys.update(str(choice) for choice in alias.choices)
    return keys


def asks_for_nothing_more(key: str, value: Any, *, dataset: bool = False) -> bool:
    """True when a refused key's value means what dreamcore does anyway (unset, false/off, SimpleTuner's default
    where that default is what dreamcore does, or a value in MATCHING_VALUES)."""
    if value in MATCHING_VALUES.get(key, ()):
        return True
    if key in DEFAULT_DIFFERS:
        return False
    if value is None or value is False or value == "":
        return True
    default = (DATASET_DEFAULTS if dataset else SIMPLETUNER_DEFAULTS).get(key)
    if default is None:  # a setting SimpleTuner leaves unset: 0 is off too (no rescale, no warm-up, ...)
        return value == 0 and not isinstance(value, bool)
    number = _as_number(value)
    return value == default or str(value) == str(default) or (number is not None and number == _as_number(default))


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def refusal(key: str, value: Any, reason: str) -> str:
    """The message of a refused key: what is refused, why, and what to do."""
    matching = MATCHING_VALUES.get(key)
    if matching:
        remedy = "remove the key or set it to " + " or ".join(repr(v) for v in matching)
    else:
        remedy = "remove the key or set it to SimpleTuner's default"
    return f"value {value!r} refused: {reason}; {remedy}"


def ignored_notice(where: str, key: str, reason: str) -> str:
    """The line reporting an ignored key."""
    return f"{where}key {key!r} ignored: cannot change the trained weights ({reason})"
