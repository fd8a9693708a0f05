"""Optimisation, precision, losses, checkpoints, EMA and scheduled sampling (rollout)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

# Optimizers by SimpleTuner's names -> the module that provides them (None: torch itself). dreamcore.train.optim
# maps each to its class; a name whose module is not installed is refused here, listing what is.
OPTIMIZERS: dict[str, str | None] = {
    "auto": None, "adamw": None, "adamw8bit": "bitsandbytes",
    "torch-adam": None, "torch-sgd": None,
    "adamw_bf16": "optimi",  # SimpleTuner's bf16 AdamW: torch-optimi's AdamW with Kahan summation
    "optimi-adam": "optimi", "optimi-adamw": "optimi", "optimi-stableadamw": "optimi", "optimi-lion": "optimi",
    "optimi-radam": "optimi", "optimi-ranger": "optimi", "optimi-adan": "optimi", "optimi-sgd": "optimi",
    "prodigy": "prodigyopt",
    "adamw_schedulefree": "schedulefree",
    "bnb-adam": "bitsandbytes", "bnb-adam8bit": "bitsandbytes", "bnb-adamw": "bitsandbytes",
    "bnb-adamw-paged": "bitsandbytes", "bnb-adamw8bit-paged": "bitsandbytes", "bnb-lion": "bitsandbytes",
    "bnb-lion8bit": "bitsandbytes", "bnb-lion-paged": "bitsandbytes", "bnb-lion8bit-paged": "bitsandbytes",
    "bnb-adagrad": "bitsandbytes", "bnb-adagrad8bit": "bitsandbytes",
}
# Other spellings of the same optimizers.
OPTIMIZER_ALIASES = {
    "torch-adamw": "adamw",
    "ao-adamw8bit": "adamw8bit",
    "bnb-adamw8bit": "adamw8bit",
    "adam8bit": "adamw8bit",
}
# Optimizers SimpleTuner never clips the gradients of (they bound their own updates).
UNCLIPPED_OPTIMIZERS = ("optimi-stableadamw", "prodigy")
# Schedule-free optimizers keep their own schedule (the lr scheduler stays constant) and need train()/eval().
SCHEDULE_FREE_OPTIMIZERS = ("adamw_schedulefree",)


def available_optimizers() -> list[str]:
    """The optimizer names whose package is installed."""
    return [name for name, module in OPTIMIZERS.items() if module is None or importlib.util.find_spec(module)]


def parse_optimizer_config(text: str | None) -> dict[str, object]:
    """SimpleTuner's optimizer_config "k=v,k=v" as keyword arguments (numbers, true/false, none, strings)."""
    out: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"optimizer_config item {item!r} is not key=value (e.g. 'eps=1e-6,weight_decay=0.0')")
        out[key.strip()] = _optimizer_value(value.strip())
    return out


def _optimizer_value(value: str) -> object:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value

# When checkpoints are written and how many are kept: resume is exact, so they cannot change the trained
# weights and stay out of the train stage key (changing them reuses a committed training).
CHECKPOINT_FIELDS = ("checkpointing_steps", "checkpoints_total_limit")
# Name prefixes of settings that only watch training (validation images, previews, webhooks, experiment
# tracking): whichever options group holds them, they stay out of the train stage key.
OBSERVER_PREFIXES = ("validation_", "webhook", "tracker_", "report_to", "num_validation_images")


def changes_trained_weights(name: str) -> bool:
    """Whether a training-config field can change the trained weights (and so belongs in the train stage key)."""
    return name not in CHECKPOINT_FIELDS and not name.startswith(OBSERVER_PREFIXES)


class TrainOptions(BaseModel):
    """Optimisation, precision, losses, checkpoints, EMA and scheduled sampling (rollout)."""

    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.")
    max_train_steps: int = Field(1000, ge=0, description="Optimiser steps to train.")
    train_batch_size: int = Field(1, ge=1, description="Images per step per process.")
    allow_dataset_oversubscription: bool = Field(
        False, description="An aspect bucket with fewer samples (with repeats) than train_batch_size is refused, as "
        "SimpleTuner refuses it; with this on (and the dataset's repeats unset) that bucket alone is repeated until "
        "it fills one batch, with a warning."
    )
    num_processes: int = Field(
        1, ge=1, description="Training processes the train task launches on this machine (data parallel: one step "
        "sees num_processes x train_batch_size images): `accelerate launch --multi_gpu` on GPUs, torchrun with gloo "
        "on CPU. 1 trains in the task's own process.")
    num_machines: int = Field(
        1, ge=1, description="Machines training together (SimpleTuner's launch key): each runs `dreamcore run CONFIG "
        "--stage train` (or the train task) with its own machine_rank, launches num_processes processes, and they "
        "rendezvous at main_process_ip:main_process_port through torch.distributed (torchrun's static rendezvous; "
        "`accelerate launch` on GPUs). One step sees num_machines x num_processes x train_batch_size images; only "
        "rank 0 (machine 0) writes. Every machine must reach the same storage_root.")
    machine_rank: int = Field(0, ge=0, description="This machine's index in [0, num_machines); machine 0 hosts the "
                              "rendezvous and commits. Not in the train key: every machine computes the same key.")
    main_process_ip: str = Field("127.0.0.1", description="Address of machine 0, where the machines rendezvous.")
    main_process_port: int = Field(29500, ge=1, le=65535, description="Rendezvous port on machine 0.")
    ray_address: str | None = Field(
        None, description="A Ray cluster (e.g. ray://head:10001, or host:6379 from inside it) the train task runs "
        "the training on through Ray Train's TorchTrainer: num_machines x num_processes workers, placed and joined "
        "in one process group by Ray; they read the caches from and write checkpoints and the commit to "
        "storage_root, which every node must reach (an S3 root). A worker that dies fails the attempt; the task's "
        "retry resumes from the newest checkpoint. Not in the train key: where it trains does not change the weights.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimiser step.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    enable_group_offload: bool = Field(
        False, description="Keep the frozen base of the denoiser off the device between uses (diffusers' group "
        "offloading): each group of weights is brought to the device for its forward and again for its backward, "
        "then sent back. Slower steps, the same losses; LoRA/LyCORIS only. In training the memory saved is small "
        "for now: autograd keeps a linear layer's weight from its forward to its backward (README, Small GPUs).")
    group_offload_type: Literal["block_level", "leaf_level"] = Field(
        "block_level", description="Offload whole blocks (groups of group_offload_blocks_per_group) or every leaf "
        "layer on its own (least memory, most transfers).")
    group_offload_blocks_per_group: int = Field(1, ge=1, description="Blocks per group with block_level offload.")
    group_offload_use_stream: bool = Field(
        False, description="Overlap the transfers with compute on a CUDA stream (CUDA only; block_level with one "
        "block per group).")
    group_offload_to_disk_path: str | None = Field(
        None, description="Offload to safetensors files in a fresh folder under this local path (removed after "
        "the training) rather than to CPU memory: least memory of all, slowest.")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field(
        "bf16", description="Autocast precision of training: on a GPU, and bf16 also on a CPU with AMX (where it "
        "is faster than fp32); elsewhere training says it runs fp32 instead. Trained parameters stay fp32."
    )
    seed: int | None = Field(42, description="Random seed; the same seed reproduces a run.")

    optimizer: str = Field(
        "auto",
        description="SimpleTuner's optimizer names: auto (bitsandbytes 8-bit AdamW when installed on a CUDA "
        "machine, else torch AdamW), adamw (torch), adamw8bit / bnb-* (bitsandbytes, CUDA), adamw_bf16 and "
        "optimi-* (torch-optimi: adam, adamw, stableadamw, lion, radam, ranger, adan, sgd), prodigy (prodigyopt), "
        "adamw_schedulefree (schedulefree), torch-adam, torch-sgd.",
    )
    optimizer_config: str | None = Field(
        None,
        description="Extra optimizer keyword arguments as SimpleTuner writes them, 'k=v,k=v' "
        "(e.g. 'eps=1e-6,kahan_sum=true'); they override the adam_* values.",
    )
    adam_beta1: float = Field(0.9, ge=0.0, lt=1.0, description="AdamW beta1.")
    adam_beta2: float = Field(0.999, ge=0.0, lt=1.0, description="AdamW beta2.")
    adam_weight_decay: float = Field(1e-2, ge=0.0, description="AdamW weight decay.")
    adam_epsilon: float = Field(1e-8, gt=0.0, description="AdamW epsilon.")
    max_grad_norm: float = Field(
        2.0, ge=0.0, description="The gradient clipping threshold (0: no clipping): with grad_clip_method value, "
        "each gradient element is clipped to [-max_grad_norm, max_grad_norm]; with norm, the gradients are scaled "
        "so their total norm is at most max_grad_norm. As in SimpleTuner, optimi-stableadamw and prodigy are "
        "never clipped."
    )
    grad_clip_method: Literal["value", "norm"] = Field(
        "value", description="How max_grad_norm clips: value (torch's clip_grad_value_, SimpleTuner's default) or "
        "norm (clip_grad_norm_)."
    )
    lr_scheduler: Literal[
        "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "cosine_with_min_lr",
        "polynomial", "sine",
    ] = Field("constant", description="Learning-rate schedule: diffusers' get_scheduler (constant, "
              "constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial down to lr_end), "
              "transformers' cosine_with_min_lr (down to lr_end), or SimpleTuner's sine (a sine wave between "
              "learning_rate and lr_end of period 2 x lr_warmup_steps).")
    lr_warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps of the learning rate.")
    lr_num_cycles: int = Field(1, ge=1, description="cosine_with_restarts: number of restarts.")
    lr_power: float = Field(0.8, gt=0.0, description="polynomial: power of the decay.")
    lr_end: float = Field(4e-7, ge=0.0, description="polynomial, cosine_with_min_lr, sine: the lowest learning rate.")

    loss_type: Literal["l2", "huber", "smooth_l1"] = Field(
        "l2", description="The error per element: l2 (squared), huber 2c(sqrt(d^2+c^2)-c) or smooth_l1 "
        "2(sqrt(d^2+c^2)-c), c from huber_schedule."
    )
    huber_schedule: Literal["snr", "exponential", "constant"] = Field(
        "snr", description="huber / smooth_l1: c per sample: snr (large at low noise), exponential "
        "(huber_c^(t/T)) or constant (huber_c)."
    )
    huber_c: float = Field(0.1, gt=0.0, le=1.0, description="huber / smooth_l1: the base c of huber_schedule.")
    caption_dropout_probability: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Chance a sample trains on the empty caption's embedding instead of its own (0.1 is usual; "
        "a dataset's own caption_dropout_probability wins). The empty caption is cached once in the text cache.",
    )

    snr_gamma: float | None = Field(
        None, gt=0, description="Min-SNR loss weighting gamma (5.0 is usual); unset: plain MSE."
    )
    prior_loss_weight: float = Field(
        1.0, ge=0.0, description="Weight of the prior-preservation (regularisation) loss against the subject loss."
    )
    prior_preservation_target: Literal["base_prediction", "noise"] = Field(
        "base_prediction",
        description="Target for regularisation samples: base_prediction (the base model's own prediction, "
        "adapter off; a full fine-tune keeps a frozen copy of the base UNet for it, twice the UNet memory) or "
        "noise (the DreamBooth paper's class-image loss against the true noise target).",
    )
    masked_loss_normalise_by_area: bool = Field(
        False,
        description="Masked loss: divide each sample's loss by its mask area instead of the whole latent area.",
    )

    checkpointing_steps: int = Field(
        500,
        ge=1,
        validation_alias=AliasChoices("checkpointing_steps", "checkpoint_step_interval"),
        description="Save a resumable checkpoint every N optimiser steps (a crash loses at most N steps).",
    )
    checkpoints_total_limit: int | None = Field(
        None, ge=1, description="Keep only the newest N checkpoints (unset: keep all)."
    )

    init_weights: str | None = Field(
        None,
        description="Start training from these weights instead of a fresh adapter (a resumed run still continues "
        "its own checkpoint): a diffusers-format LoRA safetensors file or a folder holding "
        "pytorch_lora_weights.safetensors (e.g. a previous train stage's export/diffusers folder); for lora_type "
        "lycoris a LyCORIS weights file (or a folder holding lycoris.safetensors); for model_type full a diffusers "
        "UNet or pipeline folder (e.g. export/pipeline). A local path or a URL (s3://...). Rank, target modules "
        "and algorithm must match this config. The train stage key holds the files' content digest, not the path.",
    )

    use_ema: bool = Field(False, description="Keep an exponential moving average of the trained weights.")
    ema_decay: float = Field(0.995, gt=0.0, lt=1.0, description="EMA decay (per update).")
    ema_update_interval: int = Field(1, ge=1, description="Update the EMA every N optimiser steps.")
    ema_device: Literal["cpu", "accelerator"] = Field(
        "cpu", description="Where the EMA weights live: cpu (no accelerator memory) or accelerator (faster)."
    )

    scheduled_sampling_max_step_offset: int = Field(
        0, ge=0, description="Rollout: up to this many timesteps above the training timestep the model starts from."
    )
    scheduled_sampling_probability: float = Field(
        0.0, ge=0.0, le=1.0, description="Rollout: how often (0..1) a sample uses rolled-out latents."
    )
    scheduled_sampling_ramp_steps: int = Field(
        0, ge=0, description="Rollout: ramp the probability from prob_start to prob_end over this many steps."
    )
    scheduled_sampling_prob_start: float | None = Field(
        None, ge=0.0, le=1.0, description="Rollout: probability at the start of the ramp (default 0.0)."
    )
    scheduled_sampling_prob_end: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Rollout: probability at the end of the ramp (default: scheduled_sampling_probability). "
        "May be below prob_start: the ramp goes the way you set it.",
    )
    scheduled_sampling_start_step: int = Field(0, ge=0, description="Rollout: optimiser step where the ramp starts.")
    scheduled_sampling_ramp_shape: Literal["linear", "cosine"] = Field(
        "linear", description="Rollout: shape of the probability ramp."
    )
    scheduled_sampling_sampler: Literal["unipc", "euler", "dpm"] = Field(
        "unipc", description="Rollout: the sampler used to roll the model forward."
    )

    @model_validator(mode="before")
    @classmethod
    def _constant_with_warmup(cls, values):
        """SimpleTuner's normalize_lr_scheduler_value: 'constant' with warm-up steps is constant_with_warmup (so
        its default constant_with_warmup and ours, constant, are one schedule)."""
        if isinstance(values, dict) and values.get("lr_scheduler", "constant") == "constant":
            try:
                warmup = int(values.get("lr_warmup_steps") or 0)
            except (TypeError, ValueError):
                return values  # the field check names the bad value
            if warmup > 0:
                values = {**values, "lr_scheduler": "constant_with_warmup"}
        return values

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_alias(cls, value):
        return OPTIMIZER_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("optimizer")
    @classmethod
    def _optimizer_known(cls, value: str) -> str:
        if value not in OPTIMIZERS:
            raise ValueError(f"optimizer {value!r} is unknown; choose one of {', '.join(available_optimizers())}")
        module = OPTIMIZERS[value]
        if module is not None and importlib.util.find_spec(module) is None:
            package = {"optimi": "torch-optimi"}.get(module, module)
            raise ValueError(f"optimizer {value!r} needs the {package} package (pip install {package}); "
                             f"installed choices: {', '.join(available_optimizers())}")
        return value

    @field_validator("optimizer_config")
    @classmethod
    def _optimizer_config_parses(cls, value: str | None) -> str | None:
        parse_optimizer_config(value)
        return value

    @model_validator(mode="after")
    def _check_train_options(self) -> TrainOptions:
        if self.scheduled_sampling_probability > 0 and self.scheduled_sampling_max_step_offset == 0:
            raise ValueError(
                "scheduled_sampling_probability > 0 needs scheduled_sampling_max_step_offset >= 1 "
                "(how many timesteps the model rolls forward)"
            )
        if self.lr_scheduler == "sine" and self.lr_warmup_steps < 1:
            raise ValueError("lr_scheduler 'sine' needs lr_warmup_steps >= 1: its wave has a period of "
                             "2 x lr_warmup_steps (as in SimpleTuner)")
        if self.group_offload_use_stream and self.group_offload_type == "block_level" \
                and self.group_offload_blocks_per_group != 1:
            raise ValueError("group_offload_use_stream streams one block per group: set "
                             "group_offload_blocks_per_group 1 (or group_offload_type leaf_level)")
        if self.machine_rank >= self.num_machines:
            raise ValueError(f"machine_rank {self.machine_rank} is not below num_machines {self.num_machines}: "
                             "number the machines 0 .. num_machines - 1")
        return self
