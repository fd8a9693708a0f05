"""The training loop: the same code on 1 process or N (accelerate, data parallel).

Reads only cached batches (latents and text embeddings): no VAE or text encoder is loaded. A
BatchSource made for this many processes (its `num_processes` attribute, as CachedBatchSource has)
already yields this process's share; any other source is one shared stream, and each process takes
its own batch of every round of `num_processes` batches. Either way every process's source stays
at the same position, so one saved position resumes them all.
Only the main process writes checkpoints; all processes read them back on resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from dreamcore.cache.batch import BatchSource, TrainingBatch
from dreamcore.config import TrainingConfig
from dreamcore.models.families.denoisers import Conditioning
from dreamcore.storage import ArtifactStore
from dreamcore.train import checkpoints as ckpt
from dreamcore.train import fsdp
from dreamcore.train.adapters import Adapter, build_adapter
from dreamcore.train.base import BaseModel, load_base
from dreamcore.train.ema import TrainedEMA
from dreamcore.train.init_weights import load_init_weights
from dreamcore.train.losses import LossParts, combine, huber_c_values, latent_mask, per_sample_loss
from dreamcore.train.offload import offload_frozen_base
from dreamcore.train.optim import clip_gradients, is_schedule_free, make_lr_scheduler, make_optimizer
from dreamcore.train.precision import training_precision
from dreamcore.train.rollout import draw_offsets, make_sampler, roll_forward, rollout_probability

if TYPE_CHECKING:
    from dreamcore.models import ModelFamily

logger = logging.getLogger(__name__)


class Denoiser(torch.nn.Module):
    """The denoiser plus a LyCORIS network as one module, so data parallelism syncs every trained tensor."""

    def __init__(self, unet: torch.nn.Module, family: ModelFamily, network: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.unet = unet  # the family's denoiser: a UNet or a diffusion transformer
        self.network = network  # LyCORIS hooks itself into unet's modules; registered here for DDP
        self.family = family

    def forward(self, noisy, timesteps, conditioning: Conditioning):
        return self.family.predict(self.unet, noisy, timesteps, conditioning)


def batch_conditioning(batch: TrainingBatch, guidance=None, attention_masked: bool = False,
                       image=None) -> Conditioning:
    """The denoiser's conditioning from a batch (guidance [B]: Flux's, drawn by the family; attention_masked:
    the cached text attention mask goes with it, as the family's `text_attention_masked` asks; image: an
    upscaler's (conditioning image, noise level), drawn by the family's `image_conditioning` once per batch)."""
    mask = batch.prompt_attention_mask if attention_masked else None
    if attention_masked and mask is None:
        raise ValueError("the config trains with a text attention mask but the text cache holds none; "
                         "rerun text_cache (its rows for this model carry the mask)")
    low_res, level = (None, None) if image is None else image
    return Conditioning(batch.prompt_embeds, batch.pooled_prompt_embeds, batch.time_ids,
                        None if guidance is None else guidance.to(batch.prompt_embeds.device), mask, low_res, level,
                        batch.reference)


@dataclass
class TrainOutcome:
    """What a finished run hands to the exporters and the report."""

    adapter: Adapter
    base: BaseModel
    ema: TrainedEMA | None
    history: list[dict[str, Any]]
    resumed_from: int | None
    steps_run: int
    checkpoints: list[int] = field(default_factory=list)


def make_accelerator(config: TrainingConfig, cpu: bool | None = None):
    """An Accelerator for this config: autocast at mixed_precision on CUDA, and bf16 also on a CPU with
    AMX (train.precision says when the machine cannot honour the choice)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    cuda = torch.cuda.is_available() and not cpu
    precision = training_precision(config.mixed_precision, cuda)
    # accelerate keeps one configuration per process; a new run may need another precision.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    return Accelerator(mixed_precision=precision, cpu=not cuda)


class Trainer:
    """One training run of `config` over `batches`, checkpointing under `folder` of `store`."""

    def __init__(self, config: TrainingConfig, store: ArtifactStore, folder: str, batches: BatchSource,
                 accelerator, *, keep_reference: bool = True,
                 on_step: Callable[[dict[str, Any]], None] | None = None, show_progress: bool = True,
                 monitor=None, fence: Callable[[], None] | None = None, family=None) -> None:
        self.config, self.store, self.folder, self.batches = config, store, folder, batches
        # Raises when this run no longer owns its stage folder (storage.leases); called before writing into it.
        self.fence = fence
        self.family = family  # the ModelFamily a train plan resolved (None: load_base detects it)
        # Experiment trackers (dreamcore.train.tracking.Tracking), set after setup on the main process only.
        self.tracking = None
        self.accelerator = accelerator
        self.keep_reference = keep_reference
        self.on_step = on_step
        # In-training validation (dreamcore.evaluate.monitor.TrainingMonitor); main process only.
        self.monitor = monitor if accelerator.is_main_process else None
        self.show_progress = show_progress
        self.step = 0
        self.history: list[dict[str, Any]] = []
        # FSDP2 (train/fsdp.py): the denoiser is sharded with torch's fully_shard instead of wrapped in DDP.
        self.sharded = config.fsdp_enable

    # ------------------------------------------------------------------ setup

    def setup(self) -> Trainer:
        """Load the base, attach the adapter, build optimiser, schedule, EMA and the noise generator."""
        from accelerate.utils import set_seed

        config, accelerator = self.config, self.accelerator
        seed = config.seed if config.seed is not None else 0
        set_seed(seed)  # same adapter initialisation on every process
        full = config.model_type == "full"
        weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision)
        offload = config.enable_group_offload  # the base stays on the CPU; its groups visit the device
        self.base = load_base(config, "cpu" if offload else accelerator.device, None if full else weight_dtype,
                              self.family)
        family = self.base.family
        self.offloading = offload_frozen_base(self.base.unet, config, accelerator.device)  # before the adapter
        family.check_config(config)  # refuses what the family and its objective cannot do, by key
        # The refiner trains only the low-noise end it runs at (models/families/objectives.py).
        self.timestep_range = family.objective.timestep_range(
            config, family.name, self.base.noise_scheduler.config.num_train_timesteps)
        self.adapter = build_adapter(config, self.base.unet, quantised=self.base.quantised,
                                     keep_reference=full and self.keep_reference
                                     and config.prior_preservation_target == "base_prediction",
                                     target_modules=family.lora_targets(config))
        self._start_from_init_weights()
        if self.adapter.network is not None:  # load_base placed the UNet (quantisers place their own)
            self.adapter.network.to(accelerator.device)
        if offload:  # peft made the LoRA weights beside the base's, on the CPU
            for param in self.adapter.trainable_parameters():
                param.data = param.data.to(accelerator.device)
        if config.gradient_checkpointing or (self.sharded and config.fsdp_activation_checkpointing):
            self.base.unet.enable_gradient_checkpointing()
        self.base.unet.train()
        denoiser = Denoiser(self.base.unet, family, self.adapter.network)
        if self.sharded:  # before the optimiser: sharding replaces the parameters with DTensors
            fsdp.shard_model(denoiser, self.base.unet, config, accelerator.device)
        self.params = self.adapter.trainable_parameters()
        optimizer = make_optimizer(config, self.params, accelerator.device)
        self.lr_scheduler = make_lr_scheduler(config, optimizer)
        if self.sharded:  # accelerate would wrap the sharded model in DDP on CPU (train/fsdp.py says why)
            self.model, self.optimizer = denoiser, optimizer
        else:  # with group offload, prepare must not move the base to the device: the groups move themselves
            self.model, self.optimizer = accelerator.prepare(denoiser, optimizer,
                                                            device_placement=[not offload, True])
        self.ema = None
        if config.use_ema and accelerator.is_main_process:  # parameters agree on every process
            device = "cpu" if config.ema_device == "cpu" else accelerator.device
            self.ema = TrainedEMA(self.adapter, config.ema_decay, config.ema_update_interval, device)
        self.noise = torch.Generator().manual_seed(seed * 7919 + accelerator.process_index)
        self.sampler = None
        if config.scheduled_sampling_max_step_offset:
            self.sampler = make_sampler(config.scheduled_sampling_sampler, self.base.noise_scheduler.config)
        return self

    def _start_from_init_weights(self) -> None:
        """Load config.init_weights into the fresh adapter, unless a checkpoint of this run will be resumed."""
        if not self.config.init_weights:
            return
        if ckpt.checkpoint_steps(self.store, self.folder):
            logger.info("init_weights skipped: this run resumes its own checkpoint")
            return
        # before the EMA copy and the optimiser see the weights
        load_init_weights(self.adapter, self.config, self.base.family.denoiser)
        logger.info("training starts from init_weights %s", self.config.init_weights)

    # ------------------------------------------------------------------ the loop

    def train(self) -> TrainOutcome:
        """Resume from the newest complete checkpoint (if any) and train to max_train_steps."""
        from tqdm.auto import tqdm

        resumed = self._resume()
        start = self.step
        stream = self._own_batches()
        try:
            if self.monitor is not None and start == 0:
                self._track_evaluation(self.monitor.on_start(self.base, self.adapter))
            self._optimizer_mode("train")
            # A crashed run closes its bar too, rather than leaving it to print at interpreter exit.
            with tqdm(total=self.config.max_train_steps, initial=self.step, unit="step", desc="train",
                      disable=not (self.show_progress and self.accelerator.is_main_process)) as bar:
                saved = self._train_steps(stream, bar)
            self._optimizer_mode("eval")  # the weights to export (schedule-free: the averaged ones)
            if self.sharded:
                self._unshard()
        finally:
            if self.tracking is not None:
                self.tracking.finish()
        if self.monitor is not None:
            self.monitor.close()
        return TrainOutcome(self.adapter, self.base, self.ema, self.history, resumed, self.step - start, saved)

    def _train_steps(self, stream: Iterator[TrainingBatch], bar) -> list[int]:
        """Optimiser steps up to max_train_steps; the steps that were checkpointed."""
        accumulation = self.config.gradient_accumulation_steps
        saved = []
        while self.step < self.config.max_train_steps:
            parts = []
            for micro in range(accumulation):
                last = micro == accumulation - 1
                with self._gradient_sync(last):
                    part = self.loss(next(stream))
                    self.accelerator.backward(part.total / accumulation)
                parts.append(part)
            self._optimizer_step()
            entry = self._record(parts)
            if self.step % self.config.checkpointing_steps == 0 or self.step == self.config.max_train_steps:
                self._checkpoint()
                saved.append(self.step)
            bar.update(1)
            bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['lr']:.2e}")
            if self.on_step is not None and self.accelerator.is_main_process:
                self.on_step(entry)
            if self.tracking is not None:
                self.tracking.log_step(entry)
            if self.monitor is not None:
                due = any(self.monitor.due(self.step))
                if due and self.fence is not None:
                    self.fence()  # the monitor writes previews into the stage folder
                self._optimizer_mode("eval" if due else None)
                self._track_evaluation(self.monitor.on_step(self.step, self.base))
                self._optimizer_mode("train" if due else None)
        return saved

    def _gradient_sync(self, sync: bool):
        """A context for one micro-batch's backward: gradients are averaged over the processes only when `sync`
        (the last micro-batch of a step), else accumulated locally."""
        if self.sharded:
            self.model.set_requires_gradient_sync(sync)
            return contextlib.nullcontext()
        return contextlib.nullcontext() if sync else self.accelerator.no_sync(self.model)

    def _unshard(self) -> None:
        """Replace the sharded denoiser by a plain one holding the gathered weights (collective), with a fresh adapter
        built as setup built it, so exports and on_trained see what a single-process training hands them."""
        config, family, built = self.config, self.base.family, {}
        fsdp.reshard(self.model)

        def rebuild(module) -> None:
            built["adapter"] = build_adapter(config, module, target_modules=family.lora_targets(config))

        plain = fsdp.unsharded(self.base.unet, rebuild)
        self.adapter = dataclasses.replace(built["adapter"], reference_unet=self.adapter.reference_unet)
        self.base = dataclasses.replace(self.base, unet=plain)

    def _optimizer_mode(self, mode: str | None) -> None:
        """Schedule-free optimizers train on one sequence of weights and are evaluated on another (their average):
        switch them with train() / eval(); checkpoints hold the train-mode weights, so a resume continues exactly."""
        if mode is not None and is_schedule_free(self.config):
            getattr(self.optimizer, mode)()

    def loss(self, batch: TrainingBatch) -> LossParts:
        """The loss of one micro-batch: noise, (rollout), targets (prior preservation), mask, min-SNR."""
        config, scheduler, family = self.config, self.base.noise_scheduler, self.base.family
        batch = batch.to(self.accelerator.device)
        self._check_conditioning(batch)
        latents = batch.latents.float()
        size = latents.shape[0]
        noised = family.objective.draw(config, scheduler, latents, self.noise, self.timestep_range,
                                       self.base.prediction_type)
        noisy, timesteps = noised.noisy, noised.timesteps
        image = self._image_conditioning(latents)
        probability = rollout_probability(config, self.step)
        if probability > 0:
            offsets = draw_offsets(size, probability, config.scheduled_sampling_max_step_offset, self.noise)
            noisy = self._rolled_out(noisy, latents, noised.noise, timesteps, offsets, batch, image)
        guidance = family.guidance(config, size, self.noise) if family.guidance is not None else None
        target = self.prior_targets(noised.target, noisy, timesteps, batch, guidance, image)
        prediction = self.model(noisy, timesteps, self._conditioning(batch, guidance, image))
        mask = None if batch.loss_mask is None else latent_mask(batch.loss_mask, tuple(latents.shape[-2:]))
        losses = per_sample_loss(prediction, target, mask, config.masked_loss_normalise_by_area, config.loss_type,
                                 self._huber_c(timesteps))
        weights = family.objective.loss_weights(config, scheduler, timesteps, self.base.prediction_type)
        return combine(losses, batch.is_regularisation, config.prior_loss_weight, weights)

    # ------------------------------------------------------------------ loss helpers

    def _conditioning(self, batch: TrainingBatch, guidance=None, image=None) -> Conditioning:
        return batch_conditioning(batch, guidance, self.base.family.text_attention_masked(self.config), image)

    def _image_conditioning(self, latents):
        """An upscaler's (low-resolution input, noise level) made from the clean targets, drawn once per batch so
        the prediction, the prior target and the rollout see the same input; None for every other family."""
        make = self.base.family.image_conditioning
        if make is None:
            return None
        image, level = make(latents, self.noise)
        return image.to(latents.device), level.to(latents.device)

    def _huber_c(self, timesteps):
        """Per-sample Huber c [B] of the config's huber_schedule (None for l2); DDPM from alphas_cumprod."""
        scheduler = self.base.noise_scheduler
        return huber_c_values(self.config, timesteps, scheduler.config.num_train_timesteps,
                              getattr(scheduler, "alphas_cumprod", None))

    def prior_targets(self, target, noisy, timesteps, batch: TrainingBatch, guidance=None, image=None):
        """Regularisation samples learn the base model's own prediction (adapter off), unless the target is noise."""
        regularisation = batch.is_regularisation
        if self.config.prior_preservation_target == "noise":
            return target  # the DreamBooth paper's class-image loss: the true target, weighted
        wanted = regularisation is not None and bool(regularisation.any())
        if self.sharded:
            return self._sharded_prior_targets(target, noisy, timesteps, batch, guidance, image, wanted)
        if not wanted:
            return target
        index = regularisation.nonzero().squeeze(1)
        conditioning = self._conditioning(batch, guidance, image).select(index)
        with torch.no_grad(), self.accelerator.autocast(), self.adapter.disabled() as base_unet:
            base = self.base.family.predict(base_unet, noisy[index], timesteps[index], conditioning)
        target = target.clone()
        target[index] = base.float()
        return target

    def _sharded_prior_targets(self, target, noisy, timesteps, batch: TrainingBatch, guidance, image, wanted: bool):
        """prior_targets under FSDP: a forward of the sharded model is a collective, so every process runs the base
        prediction (on its whole batch) when any process has a regularisation sample, through the root module."""
        anywhere = torch.tensor([int(wanted)], device=self.accelerator.device)
        if not int(self.accelerator.reduce(anywhere, reduction="sum")):
            return target
        conditioning = self._conditioning(batch, guidance, image)
        with torch.no_grad(), self.accelerator.autocast(), self.adapter.disabled() as base_unet:
            if base_unet is self.base.unet:  # the sharded denoiser, adapter off: through the FSDP root
                base = self.model(noisy, timesteps, conditioning)
                # peft switches the adapter off and on by requires_grad on the parameters registered at the time;
                # without fsdp_reshard_after_forward the gathered ones would still be, and the sharded (trained)
                # ones would stay frozen: register the sharded ones before the adapter is switched on again.
                fsdp.reshard(self.model)
            else:  # a full fine-tune's frozen reference: a plain module
                base = self.base.family.predict(base_unet, noisy, timesteps, conditioning)
        if not wanted:
            return target
        index = batch.is_regularisation.nonzero().squeeze(1)
        target = target.clone()
        target[index] = base[index].float()
        return target

    def _rolled_out(self, noisy, latents, noise, timesteps, offsets, batch: TrainingBatch, image=None):
        """Replace the noisy latents of samples with an offset by the current model's own rollout."""
        last = self.base.noise_scheduler.config.num_train_timesteps - 1
        predict = self.base.family.predict
        noisy = noisy.clone()
        for i in offsets.nonzero().squeeze(1).tolist():
            end = int(timesteps[i])
            start = min(end + int(offsets[i]), last)
            if start <= end:
                continue
            index = torch.tensor([i], device=latents.device)
            conditioning = self._conditioning(batch, image=image).select(index)

            def denoise(x, t, conditioning=conditioning):
                return predict(self.base.unet, x, t, conditioning).float()

            with torch.no_grad(), self.accelerator.autocast():
                noisy[i] = roll_forward(denoise, self.sampler, self.base.noise_scheduler, latents[index],
                                        noise[index], start, end)[0]
        return noisy

    def _check_conditioning(self, batch: TrainingBatch) -> None:
        family = self.base.family
        if (family.pooled_text and batch.pooled_prompt_embeds is None) or (family.time_ids and batch.time_ids is None):
            raise ValueError(f"{family.name} batches need pooled_prompt_embeds and time_ids; the text-embed and "
                             "latent caches of this run did not provide them (were they built for another model?)")

    # ------------------------------------------------------------------ steps, logs, checkpoints

    def _optimizer_step(self) -> None:
        clip_gradients(self.accelerator, self.params, self.config)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.ema is not None:
            self.ema.maybe_update(self.step)

    def _track_evaluation(self, evaluation) -> None:
        if evaluation is not None and self.tracking is not None:
            self.tracking.log_evaluation(evaluation)

    def _record(self, parts: list[LossParts]) -> dict[str, Any]:
        """Losses averaged over micro-batches and processes, appended to the history."""
        sums = torch.tensor([
            sum(float(p.total.detach()) for p in parts), len(parts),
            sum((p.subject or 0.0) * p.subject_count for p in parts), sum(p.subject_count for p in parts),
            sum((p.regularisation or 0.0) * p.regularisation_count for p in parts),
            sum(p.regularisation_count for p in parts),
        ], dtype=torch.float64, device=self.accelerator.device)
        sums = self.accelerator.reduce(sums, reduction="sum").tolist()
        entry = {
            "step": self.step,
            "loss": sums[0] / sums[1],
            "subject_loss": sums[2] / sums[3] if sums[3] else None,
            "regularisation_loss": sums[4] / sums[5] if sums[5] else None,
            "lr": self.lr_scheduler.get_last_lr()[0],
            "rollout_probability": rollout_probability(self.config, self.step - 1),
        }
        self.history.append(entry)
        return entry

    def _own_batches(self) -> Iterator[TrainingBatch]:
        """This process's batches: the source's own share if it shards itself, else one batch per round."""
        stream = iter(self.batches)
        processes, index = self.accelerator.num_processes, self.accelerator.process_index
        made_for = getattr(self.batches, "num_processes", 1)  # CachedBatchSource shards itself
        if made_for == processes:
            yield from stream
            return
        if made_for != 1:
            raise ValueError(f"the BatchSource was made for {made_for} processes but this run has {processes}")
        while True:
            round_ = [next(stream) for _ in range(processes)]
            yield round_[index]

    def _checkpoint(self) -> None:
        from accelerate.utils import gather_object

        rng = gather_object([_rng_state(self.noise)])  # collective: every process takes part
        trainable, optimizer = self._checkpoint_tensors()  # collective under FSDP
        if self.accelerator.is_main_process:
            state = {"lr_scheduler": self.lr_scheduler.state_dict(), "rng": rng,
                     "ema": self.ema.state_dict() if self.ema is not None else None}
            progress = {"batches": ckpt.json_safe(self.batches.state_dict()), "history": self.history,
                        "fsdp": self.config.fsdp_state_dict_type if self.sharded else None}
            ckpt.save_checkpoint(self.store, self.folder, ckpt.Checkpoint(
                self.step, trainable, optimizer, state, progress),
                self.config.checkpoints_total_limit, fence=self.fence)
        self.accelerator.wait_for_everyone()

    def _checkpoint_tensors(self) -> tuple[dict | None, dict | None]:
        """The trained tensors and the optimiser state the main process writes; under FSDP with
        SHARDED_STATE_DICT every process has written its shards here already, and there is nothing more to write."""
        if not self.sharded:
            if not self.accelerator.is_main_process:
                return None, None
            return self.adapter.trainable_state(), self.optimizer.state_dict()
        fsdp.reshard(self.model)  # the trained parameters are the sharded ones again
        names = list(self.adapter.named_trainable())
        if self.config.fsdp_state_dict_type == "FULL_STATE_DICT":
            return fsdp.full_checkpoint_state(self.model, self.optimizer, names, _DENOISER_PREFIX)
        fsdp.save_sharded(self.store, ckpt.checkpoint_folder(self.folder, self.step), self.model, self.optimizer,
                          names, _DENOISER_PREFIX)
        return None, None

    def _resume(self) -> int | None:
        saved = ckpt.latest_checkpoint(self.store, self.folder)
        if saved is None:
            return None
        self._load_checkpoint_tensors(saved)
        self.lr_scheduler.load_state_dict(saved.state["lr_scheduler"])
        if self.ema is not None and saved.state.get("ema") is not None:
            self.ema.load_state_dict(saved.state["ema"])
        rng = saved.state["rng"]
        if self.accelerator.process_index < len(rng):
            _restore_rng(rng[self.accelerator.process_index], self.noise)
        else:
            logger.warning("checkpoint was written by %d processes; process %d starts with fresh noise",
                           len(rng), self.accelerator.process_index)
        self.batches.load_state_dict(saved.progress["batches"])
        self.history = list(saved.progress["history"])
        self.step = saved.step
        logger.info("resumed from the checkpoint of step %d", saved.step)
        return saved.step

    def _load_checkpoint_tensors(self, saved: ckpt.Checkpoint) -> None:
        layout = saved.progress.get("fsdp")
        if (layout is not None) != self.sharded:
            raise ValueError(f"the checkpoint of step {saved.step} was written {'with' if layout else 'without'} "
                             f"fsdp_enable; resume it with fsdp_enable {bool(layout)}")
        if not self.sharded:
            self.adapter.load_trainable_state(saved.trainable)
            self.optimizer.load_state_dict(saved.optimizer)
        elif layout == "FULL_STATE_DICT":
            fsdp.load_full_checkpoint(self.model, self.optimizer, saved.trainable, saved.optimizer, _DENOISER_PREFIX)
        else:
            fsdp.load_sharded(self.store, ckpt.checkpoint_folder(self.folder, saved.step), self.model,
                              self.optimizer, list(self.adapter.named_trainable()), _DENOISER_PREFIX)


_DENOISER_PREFIX = "unet."  # Denoiser's name for the family's denoiser: the sharded model's parameter names


def _rng_state(noise: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "noise": noise.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any], noise: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    noise.set_state(state["noise"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
